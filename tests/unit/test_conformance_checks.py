"""The shipped conformance checks fail an adapter that breaks the lifecycle, each for its reason, and pass
one that keeps it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from mixerd.adapter import AdapterInfo, CheckResult, Env, ListEntryInstance, MetricInstance
from mixerd.testing.conformance import CHECKS, Subject, run_check


@dataclass
class Params:
    limit: int = 1

    def check(self) -> Iterator[tuple[str, str]]:
        if self.limit < 1:
            yield ".limit", "must be at least 1"


class Good:
    def __init__(self, env: Env) -> None:
        self.env = env
        env.every(60, lambda: None)

    def handle_listentry(self, instance: ListEntryInstance) -> CheckResult:
        return CheckResult()

    async def handle_metric(self, instances: list[MetricInstance]) -> None:
        return None

    def close(self) -> None:
        pass


def adapter(handler: type = Good, **changes: Any) -> AdapterInfo:
    info: dict[str, Any] = {
        "name": "fake",
        "templates": ("listentry", "metric"),
        "params": Params,
        "build": handler,
        "description": "a fake",
    }
    return AdapterInfo(**{**info, **changes})


def failures(info: AdapterInfo, **subject: Any) -> dict[str, str]:
    """Check name -> the failure's text, for each check that fails."""
    failed = {}
    for name in CHECKS:
        try:
            run_check(name, Subject(info, **subject))
        except Exception as e:  # a check fails with AssertionError, or with what the adapter raised
            failed[name] = " ".join([f"{type(e).__name__}: {e}", *getattr(e, "__notes__", [])])
    return failed


def test_an_adapter_that_keeps_the_lifecycle_passes_every_check() -> None:
    assert failures(adapter(), params={"limit": 2}) == {}


class NoMetric(Good):
    handle_metric = None  # type: ignore[assignment]


class WrongAnswer(Good):
    def handle_listentry(self, instance: ListEntryInstance) -> CheckResult:
        return "yes"  # type: ignore[return-value]


class PlainReturningAwaitable(Good):
    def handle_metric(self, instances: list[MetricInstance]) -> Any:  # type: ignore[override]
        return asyncio.sleep(0)


class Generator(Good):
    def handle_metric(self, instances: list[MetricInstance]) -> Any:  # type: ignore[override]
        yield None


class ClosesOnce(Good):
    closed = False

    def close(self) -> None:
        if self.closed:
            raise RuntimeError("closed twice")
        self.closed = True


class OwnTask(Good):
    """Starts background work of its own instead of through env, so nobody cancels it."""

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.task = asyncio.get_running_loop().create_task(asyncio.sleep(3600))


class Noisy(Good):
    def handle_listentry(self, instance: ListEntryInstance) -> CheckResult:
        self.env.logger.warning("backend gone")
        return CheckResult()


@pytest.mark.parametrize(
    ("handler", "failed", "text"),
    [
        (NoMetric, {"zero_instances_and_close_twice", "methods_async_or_plain"}, "has no handle_metric"),
        (WrongAnswer, {"zero_instances_and_close_twice"}, "returned 'yes', not a CheckResult"),
        (PlainReturningAwaitable, {"zero_instances_and_close_twice"}, "declare it `async def`"),
        (Generator, {"zero_instances_and_close_twice", "methods_async_or_plain"}, "is a generator"),
        (ClosesOnce, {"zero_instances_and_close_twice"}, "RuntimeError: closed twice"),
        (OwnTask, {"zero_instances_and_close_twice", "failed_build_leaves_nothing"}, "still running"),
        (Noisy, {"zero_instances_and_close_twice"}, "mixerd.adapter.fake: backend gone"),
    ],
)
def test_a_handler_that_breaks_the_lifecycle_fails_its_checks(
    handler: type, failed: set[str], text: str
) -> None:
    found = failures(adapter(handler))
    assert set(found) == failed
    assert any(text in message for message in found.values()), found


def test_documented_exceptions_and_warnings_are_allowed_with_the_default_params_only() -> None:
    class Unconfigured(Noisy):
        def handle_listentry(self, instance: ListEntryInstance) -> CheckResult:
            super().handle_listentry(instance)
            if self.env.params.limit < 3:
                raise LookupError("no limit for this instance")
            return CheckResult()

    info = adapter(Unconfigured)
    assert "zero_instances_and_close_twice" in failures(info, warnings="backend gone")
    allowed = {"raises": {"listentry": LookupError}, "warnings": "backend gone"}
    assert failures(info, **allowed) == {}
    # with other params, the documented exception is a failure
    assert set(failures(info, params={"limit": 2}, **allowed)) == {"zero_instances_and_close_twice"}
    unreadable = failures(info, params={"limit": 3, "extra": 0}, **allowed)
    assert "ParamsError: .extra: unknown field (known: limit)" in unreadable["params_round_trip"]
    assert failures(info, params={"limit": 3}, **allowed) == {}


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        ({"name": "Fake"}, "bad adapter name"),
        ({"templates": ("listentry", "listentry")}, "a template is named twice"),
        ({"templates": ("nosuch",)}, "unknown templates"),
        ({"description": " "}, "no description"),
    ],
)
def test_a_bad_adapter_info_fails(changes: dict[str, Any], text: str) -> None:
    with pytest.raises(AssertionError, match=text):
        run_check("adapter_info", Subject(adapter(**changes)))


def test_bad_default_params_fail() -> None:
    @dataclass
    class Bad(Params):
        limit: int = 0  # which its own check() refuses

    with pytest.raises(ValueError, match="must be at least 1"):
        run_check("params_round_trip", Subject(adapter(params=Bad)))


def test_validate_must_find_nothing_wrong_with_valid_params_and_no_instances() -> None:
    complaining: Callable[..., list[tuple[str, str]]] = lambda params, instances: [("", "no")]  # noqa: E731
    with pytest.raises(AssertionError):
        run_check("validate_without_instances", Subject(adapter(validate=complaining)))


def test_an_adapters_logger_level_is_restored() -> None:
    logger = logging.getLogger("mixerd.adapter")
    logger.setLevel(logging.ERROR)
    try:
        run_check("zero_instances_and_close_twice", Subject(adapter()))
        assert logger.level == logging.ERROR
        with pytest.raises(AssertionError, match="backend gone"):  # still seen at ERROR level
            run_check("zero_instances_and_close_twice", Subject(adapter(Noisy)))
    finally:
        logger.setLevel(logging.NOTSET)
