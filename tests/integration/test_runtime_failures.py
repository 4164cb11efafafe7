"""Adapters that fail, hang or cannot be built, seen through a real mixerd over gRPC (MIXER.md 8.1, 8.6).

Each test registers small test adapters next to the built-in ones by building the Runtime itself and
running it with mixerd.testing_scenarios.run_mixer.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from mixerd.adapter import AdapterInfo, CheckResult, Env, QuotaArgs, QuotaResult
from mixerd.api.mixer.v1 import mixer_pb2, mixer_pb2_grpc
from mixerd.attribute import GLOBAL_WORDS, encode_attributes, encode_report
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime
from mixerd.testing_scenarios import RunningMixer, run_mixer

pytestmark = pytest.mark.integration

_GWC = len(GLOBAL_WORDS)


@dataclass
class NoParams:
    pass


class Probe:
    """What the test adapters saw: cancelled calls and closed handlers."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []
        self.closed: list[str] = []
        self.reports: list[tuple[str, int]] = []


class _Handler:
    def __init__(self, env: Env, probe: Probe) -> None:
        self.env = env
        self.probe = probe

    def close(self) -> None:
        self.probe.closed.append(self.env.handler)


class Raising(_Handler):
    def handle_checknothing(self, instance: Any) -> CheckResult:
        raise ValueError("kaput")

    def handle_logentry(self, instances: list[Any]) -> None:
        raise ValueError("sink is full")


class Hanging(_Handler):
    async def handle_checknothing(self, instance: Any) -> CheckResult:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.probe.cancelled.append(self.env.handler)
            raise
        return CheckResult()

    async def handle_quota(self, instance: Any, args: QuotaArgs) -> QuotaResult:
        await asyncio.sleep(60)
        return QuotaResult(args.amount)


class AsyncRaising(_Handler):
    async def handle_checknothing(self, instance: Any) -> CheckResult:
        await asyncio.sleep(0)
        raise ConnectionError("backend refused")


class Incomplete(_Handler):
    """Declares checknothing but has no handle_checknothing (an adapter bug)."""


class Counting(_Handler):
    def handle_logentry(self, instances: list[Any]) -> None:
        self.probe.reports.append((self.env.handler, len(instances)))


def _adapter(name: str, cls: type[_Handler], probe: Probe, templates: tuple[str, ...]) -> AdapterInfo:
    return AdapterInfo(name=name, templates=templates, params=NoParams, build=lambda env: cls(env, probe))


def _broken_build(env: Env) -> Any:
    raise OSError("cannot reach the backend at 10.9.9.9:1")


def _adapters(probe: Probe) -> dict[str, AdapterInfo]:
    return {
        **load_adapters(),
        "raising": _adapter("raising", Raising, probe, ("checknothing", "logentry")),
        "hanging": _adapter("hanging", Hanging, probe, ("checknothing", "quota")),
        "asyncraising": _adapter("asyncraising", AsyncRaising, probe, ("checknothing",)),
        "counting": _adapter("counting", Counting, probe, ("logentry",)),
        "incomplete": _adapter("incomplete", Incomplete, probe, ("checknothing",)),
        "unbuildable": AdapterInfo(
            name="unbuildable", templates=("checknothing",), params=NoParams, build=_broken_build
        ),
    }


def _config(handlers: dict[str, str], rules: list[tuple[str, list[str], str]]) -> str:
    """Handlers (name -> adapter), instances `nothing` (checknothing), `rq` (quota) and `log`
    (logentry), and one rule per (handler, instances, match)."""
    docs = [
        "kind: instance\nmetadata: {name: nothing}\nspec: {compiledTemplate: checknothing}",
        "kind: instance\nmetadata: {name: rq}\nspec: {compiledTemplate: quota}",
        "kind: instance\nmetadata: {name: log}\nspec:\n  compiledTemplate: logentry\n"
        "  params: {variables: {code: response.code | 0}}",
    ]
    for handler, adapter in handlers.items():
        docs.append(f"kind: handler\nmetadata: {{name: {handler}}}\nspec: {{compiledAdapter: {adapter}}}")
    for i, (handler, instances, match) in enumerate(rules):
        docs.append(
            f"kind: rule\nmetadata: {{name: r{i}}}\nspec:\n  match: '{match}'\n"
            f"  actions: [{{handler: {handler}, instances: [{', '.join(instances)}]}}]"
        )
    return "\n---\n".join("apiVersion: config.istio.io/v1alpha2\n" + d for d in docs)


@contextmanager
def _mixer(
    tmp_path: Path, probe: Probe, config: str, **settings: Any
) -> Iterator[tuple[RunningMixer, mixer_pb2_grpc.MixerStub]]:
    (tmp_path / "rules.yaml").write_text(config)
    runtime = Runtime(_adapters(probe), folder=tmp_path)
    with run_mixer(runtime, **settings) as mixer, grpc.insecure_channel(mixer.address) as channel:
        yield mixer, mixer_pb2_grpc.MixerStub(channel)


def _check(
    stub: mixer_pb2_grpc.MixerStub, timeout: float | None = None, quotas: dict[str, int] | None = None
) -> Any:
    request = mixer_pb2.CheckRequest(
        attributes=encode_attributes({"request.path": "/"}, _GWC), global_word_count=_GWC
    )
    for name, amount in (quotas or {}).items():
        request.quotas[name].amount = amount
    return stub.Check(request, timeout=timeout)


def _failed(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str, float]:
    start = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value.code(), e.value.details(), time.monotonic() - start


def _wait_for(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_an_adapter_that_raises_fails_the_check_with_internal(tmp_path: Path) -> None:
    probe = Probe()
    config = _config({"boom": "raising"}, [("boom", ["nothing"], "true")])
    with _mixer(tmp_path, probe, config) as (mixer, stub):
        code, details, _ = _failed(lambda: _check(stub))
        assert code is grpc.StatusCode.INTERNAL
        assert details == "performing check operation failed: boom.handler.istio-system: ValueError: kaput"
        key = (
            'mixerd_adapter_dispatches_total{handler="boom.handler.istio-system",'
            'outcome="error",template="checknothing"}'
        )
        assert mixer.metric(key) == 1
    assert probe.closed == ["boom.handler.istio-system"]  # stopping the server closed it


def test_an_async_adapter_that_raises_fails_the_check_with_internal(tmp_path: Path) -> None:
    probe = Probe()
    config = _config({"down": "asyncraising"}, [("down", ["nothing"], "true")])
    with _mixer(tmp_path, probe, config) as (_, stub):
        code, details, _ = _failed(lambda: _check(stub))
    assert code is grpc.StatusCode.INTERNAL
    assert details == (
        "performing check operation failed: down.handler.istio-system: ConnectionError: backend refused"
    )


def test_a_hanging_adapter_answers_internal_well_within_the_callers_deadline(tmp_path: Path) -> None:
    probe = Probe()
    config = _config({"slow": "hanging"}, [("slow", ["nothing"], "true")])
    with _mixer(tmp_path, probe, config, adapter_timeout=30.0) as (_, stub):
        code, details, elapsed = _failed(lambda: _check(stub, timeout=1.0))
        assert code is grpc.StatusCode.INTERNAL  # not the client's DEADLINE_EXCEEDED
        assert re.fullmatch(
            r"performing check operation failed: slow\.handler\.istio-system: "
            r"no answer within 0\.\d+s",
            details,
        ), details
        assert 0.5 < elapsed < 0.9
        _wait_for(lambda: probe.cancelled == ["slow.handler.istio-system"])  # the late call is cancelled


def test_without_a_deadline_a_hanging_adapter_is_cut_off_at_adapter_timeout(tmp_path: Path) -> None:
    probe = Probe()
    config = _config({"slow": "hanging"}, [("slow", ["nothing"], "true")])
    with _mixer(tmp_path, probe, config, adapter_timeout=0.3) as (_, stub):
        code, details, elapsed = _failed(lambda: _check(stub))
    assert code is grpc.StatusCode.INTERNAL
    assert details == "performing check operation failed: slow.handler.istio-system: no answer within 0.3s"
    assert 0.3 <= elapsed < 0.8


def test_a_hanging_quota_adapter_grants_nothing_and_the_check_passes(tmp_path: Path) -> None:
    probe = Probe()
    config = _config({"slow": "hanging"}, [("slow", ["rq"], "true")])
    with _mixer(tmp_path, probe, config, adapter_timeout=0.2) as (_, stub):
        response = _check(stub, quotas={"rq": 5, "other": 2})
    assert response.precondition.status.code == 0
    assert response.quotas["rq"].granted_amount == 0
    assert response.quotas["other"].granted_amount == 2


def test_a_handler_whose_build_fails_is_unavailable_and_the_server_still_starts(tmp_path: Path) -> None:
    probe = Probe()
    config = _config(
        {"broken": "unbuildable", "boom": "raising"},
        [("broken", ["nothing"], 'request.path == "/"'), ("boom", ["nothing"], 'request.path == "/boom"')],
    )
    with _mixer(tmp_path, probe, config) as (mixer, stub):
        code, details, _ = _failed(lambda: _check(stub))
        assert code is grpc.StatusCode.INTERNAL
        assert details == (
            "performing check operation failed: broken.handler.istio-system: HandlerUnavailable: "
            "handler is unavailable: build failed: OSError: cannot reach the backend at 10.9.9.9:1"
        )
        assert mixer.metric("mixerd_handler_build_failures_total") == 1
        assert mixer.metric("mixerd_handler_builds_total") == 2
        # A request its rule does not match is not affected.
        request = mixer_pb2.CheckRequest(
            attributes=encode_attributes({"request.path": "/other"}, _GWC), global_word_count=_GWC
        )
        assert stub.Check(request).precondition.status.code == 0


def test_a_failing_report_adapter_answers_unknown_and_the_others_still_get_their_instances(
    tmp_path: Path,
) -> None:
    probe = Probe()
    config = _config(
        {"sink": "raising", "counter": "counting"}, [("sink", ["log"], "true"), ("counter", ["log"], "true")]
    )
    bags = [{"response.code": 200}, {"response.code": 500}]
    with _mixer(tmp_path, probe, config) as (_, stub):
        code, details, _ = _failed(lambda: stub.Report(encode_report(bags, _GWC)))
    assert code is grpc.StatusCode.UNKNOWN
    assert (
        details == "performing report operation failed: sink.handler.istio-system: ValueError: sink is full"
    )
    assert probe.reports == [("counter.handler.istio-system", 2)]


def test_a_handler_without_the_method_for_its_template_is_unavailable(tmp_path: Path) -> None:
    probe = Probe()
    config = _config({"half": "incomplete"}, [("half", ["nothing"], "true")])
    with _mixer(tmp_path, probe, config) as (mixer, stub):
        code, details, _ = _failed(lambda: _check(stub))
        assert code is grpc.StatusCode.INTERNAL
        assert details == (
            "performing check operation failed: half.handler.istio-system: HandlerUnavailable: "
            "handler is unavailable: build failed: Incomplete has no method handle_checknothing"
        )
        assert mixer.metric("mixerd_handler_build_failures_total") == 1
        assert probe.closed == ["half.handler.istio-system"]  # what it built was released
