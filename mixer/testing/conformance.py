"""The adapter lifecycle (DESIGN.md decision 3, docs/adapters.md) as checks any adapter can be held to.

mixerd holds every built-in adapter to these checks (tests/unit/test_adapter_conformance.py); an adapter
author gets them as one pytest test per check from a line in a test module:

    from mixerd.testing.conformance import conformance_tests

    test_conformance = conformance_tests("strikes", params={"maxStrikes": 1})

Each check takes a `Subject` (the adapter, and what it documents) and raises AssertionError when the
adapter breaks the lifecycle:

- `adapter_info`: its AdapterInfo is sane (name, templates, a params dataclass, callables);
- `params_round_trip`: the params model's defaults are valid and, like `Subject.params`, survive
  `params_to_dict` and `read_params` (which also proves every field type is one mixerd reads);
- `validate_without_instances`: `validate` with valid params and no instances finds no problem;
- `zero_instances_and_close_twice`: `build(env)` in a running loop gives a handler with a
  `handle_<template>` for every template, each answering a zero instance with the right type (or
  raising what `Subject.raises` documents); after mixerd's close sequence (background work cancelled,
  `close()` twice) nothing of the adapter is left running;
- `methods_async_or_plain`: each handle method is an `async def` or a plain `def` (never a generator);
- `failed_build_leaves_nothing`: a build that fails after the adapter's own build ran leaves no
  background task, and closing the unavailable handler, twice, is fine;
- `closed_handler_leaves_no_cycle`: a handler used and closed is freed by reference counting alone:
  `mixerd serve` freezes its heap after each config load (mixer/runtime/heap.py), and a frozen object
  in a reference cycle is never collected, so a handler that keeps a cycle (a task holding the handler
  that holds the task, a bound method of the handler kept by an object it owns) would stay in memory
  after every reload that replaces it. Break such cycles in `close()`.

The adapter's logger (`mixerd.adapter.<name>`) must not log a warning or an error on these paths,
except what `Subject.warnings` allows: a background failure is logged there, so it shows up here.
The checks run with params taken as a handler's YAML would give them: the defaults, and `Subject.params`
when set (choose params that take the adapter down more of its paths).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import inspect
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from ..adapter import CLOSE, AdapterInfo, CheckResult, Code, Env, QuotaArgs, QuotaResult, Variety
from ..params import params_to_dict, read_params
from ..runtime.handlers import build_handler
from ..settings import Settings
from ..templates import TEMPLATES

if TYPE_CHECKING:
    import pytest

#: The name every zero instance carries (an instance always has its FQN): a quota adapter's params may
#: configure a quota for it.
ZERO_NAME = "zero.instance.conformance"

#: What a handle method answers, by variety.
RESULT_TYPES: Mapping[Variety, type] = {
    Variety.CHECK: CheckResult,
    Variety.CHECK_WITH_OUTPUT: CheckResult,
    Variety.QUOTA: QuotaResult,
    Variety.REPORT: type(None),
    Variety.ATTRIBUTE_GENERATOR: Mapping,
}

_SECOND = 1_000_000_000


@dataclass(frozen=True)
class Subject:
    """An adapter under the checks, with what it documents."""

    info: AdapterInfo
    #: Params as a handler's YAML gives them, checked besides the defaults (None: the defaults only).
    params: Mapping[str, Any] | None = None
    #: Template -> the exception a zero instance raises with the default params, as the adapter documents
    #: (memquota: UnknownQuota for an instance without a quota). Nothing else may raise.
    raises: Mapping[str, type[Exception]] = field(default_factory=dict)
    #: A regular expression (searched) of warnings that are right on these paths; "" allows none.
    warnings: str = ""

    @property
    def name(self) -> str:
        return self.info.name


Check = Callable[[Subject], None]


def _cases(subject: Subject) -> Iterator[tuple[str, Any]]:
    """(label, params) for the defaults, and for `subject.params` when given."""
    yield "default params", read_params(subject.info.params, None)
    if subject.params is not None:
        yield f"params {dict(subject.params)!r}", read_params(subject.info.params, subject.params)


@contextlib.contextmanager
def _labelled(label: str) -> Iterator[None]:
    """Say which params a failure happened with."""
    try:
        yield
    except Exception as e:
        e.add_note(f"(with {label})")
        raise


# -- the checks ---------------------------------------------------------------------------------------


def check_adapter_info(subject: Subject) -> None:
    info = subject.info
    assert re.fullmatch(r"[a-z][a-z0-9_-]*", info.name), f"bad adapter name {info.name!r}"
    assert isinstance(info.templates, tuple) and info.templates, "templates must be a non-empty tuple"
    assert len(set(info.templates)) == len(info.templates), "a template is named twice"
    assert set(info.templates) <= set(TEMPLATES), f"unknown templates {set(info.templates) - set(TEMPLATES)}"
    assert dataclasses.is_dataclass(info.params) and isinstance(info.params, type), "params is no dataclass"
    assert callable(info.build), "build is not callable"
    assert info.validate is None or callable(info.validate), "validate is neither None nor callable"
    assert isinstance(info.description, str) and info.description.strip(), "no description"


def check_params_round_trip(subject: Subject) -> None:
    model = subject.info.params
    defaults = model()
    assert read_params(model, None) == defaults
    assert read_params(model, {}) == defaults
    for label, params in _cases(subject):
        with _labelled(label):
            assert read_params(model, params_to_dict(params)) == params
    if subject.params is not None:
        assert read_params(model, subject.params) != defaults, "the extra params are the defaults"


def check_validate_without_instances(subject: Subject) -> None:
    if subject.info.validate is None:
        return
    for label, params in _cases(subject):
        with _labelled(label):
            problems = subject.info.validate(params, {})
            assert isinstance(problems, list | tuple | Iterator), f"validate returned {problems!r}"
            assert list(problems) == []  # valid params and no instances: nothing to complain about


def check_zero_instances_and_close_twice(subject: Subject) -> None:
    for label, params in _cases(subject):
        raises = subject.raises if label == "default params" else {}
        with _labelled(label):
            asyncio.run(_handle_zero_instances(subject, params, raises))


async def _handle_zero_instances(
    subject: Subject, params: Any, raises: Mapping[str, type[Exception]]
) -> None:
    env = _env(subject.name, params)
    handler = await _build(subject.info, env)
    try:
        for template in subject.info.templates:
            await _check_handle(handler, template, raises.get(template))
    finally:
        await env.cancel_background()  # what the runtime does before close
        await _close(handler)
        await _close(handler)  # idempotent
    assert _nothing_else_running(), "the handler left tasks running after close"


async def _check_handle(handler: Any, template: str, documented: type[Exception] | None) -> None:
    t = TEMPLATES[template]
    method = getattr(handler, t.method, None)
    assert callable(method), f"{type(handler).__name__} has no {t.method} method"
    try:
        result = await _call(method, *_zero_args(template))
    except AssertionError:
        raise
    except Exception as e:
        if documented is not None and isinstance(e, documented):
            return
        raise AssertionError(f"{t.method} raised {type(e).__name__}: {e}") from e
    assert documented is None, f"{t.method} was expected to raise {documented.__name__}"
    expected = RESULT_TYPES[t.variety]
    assert isinstance(result, expected), f"{t.method} returned {result!r}, not a {expected.__name__}"
    if isinstance(result, CheckResult):
        assert int(result.status) in set(Code)
        assert result.valid_duration >= 0 and isinstance(result.valid_use_count, int)
    elif isinstance(result, QuotaResult):
        assert 0 <= result.granted_amount <= 1 and result.valid_duration >= 0
        assert int(result.status) in set(Code)
    elif isinstance(result, Mapping):
        assert set(result) <= {f.name for f in t.output}, f"{t.method} answered unknown outputs"


def check_methods_async_or_plain(subject: Subject) -> None:
    async def run() -> None:
        env = _env(subject.name, read_params(subject.info.params, None))
        handler = await _build(subject.info, env)
        try:
            for template in subject.info.templates:
                method = getattr(handler, TEMPLATES[template].method)
                assert inspect.ismethod(method) or inspect.isfunction(method), method
                if not inspect.iscoroutinefunction(method):
                    assert not inspect.isasyncgenfunction(method), f"{method.__name__} is an async generator"
                    assert not inspect.isgeneratorfunction(method), f"{method.__name__} is a generator"
        finally:
            await env.cancel_background()
            await _close(handler)

    asyncio.run(run())


def check_failed_build_leaves_nothing(subject: Subject) -> None:
    """The adapter's build ran (and started what it starts), then the build failed: the runtime cancels
    the background work, and closing the unavailable handler, twice, is fine."""
    info = subject.info
    built_by_adapter: list[Any] = []

    async def failing_build(env: Env) -> Any:
        built_by_adapter.append(await _build(info, env))
        raise RuntimeError("injected failure after the adapter's build")

    async def run() -> None:
        config = SimpleNamespace(
            fqn=f"{info.name}.handler.conformance",
            adapter=dataclasses.replace(info, build=failing_build),
            params=read_params(info.params, None),
            instances={},
            rate_limits=False,
        )
        built = await build_handler(config, _FixedClock(), _SETTINGS)  # type: ignore[arg-type]
        assert not built.available
        assert built.failure == "build failed: RuntimeError: injected failure after the adapter's build"
        assert _nothing_else_running(), "background work of a failed build is still running"
        await built.close()
        await built.close()
        unavailable = built.method(info.templates[0])[0]
        try:
            unavailable(*_zero_args(info.templates[0]))
        except Exception as e:
            assert "handler is unavailable: build failed" in str(e), e
        else:
            raise AssertionError("an unavailable handler answered")
        await _close(built_by_adapter[0])  # the object the adapter built was never handed out

    asyncio.run(run())


def check_closed_handler_leaves_no_cycle(subject: Subject) -> None:
    for label, params in _cases(subject):
        with _labelled(label):
            _freed_by_reference_counting(subject, params)


def _freed_by_reference_counting(subject: Subject, params: Any) -> None:
    """Build, use and close a handler with the collector off; then collect, keeping what it finds, and
    look for the handler's own objects among it."""

    async def use_and_close() -> type:
        # What the handler answers, and what it logs, are the other checks' business: here it is only used.
        env = _env(subject.name, params)
        handler = await _build(subject.info, env)
        for template in subject.info.templates:
            with contextlib.suppress(Exception):
                await _call(getattr(handler, TEMPLATES[template].method), *_zero_args(template))
        await env.cancel_background()
        with contextlib.suppress(Exception):
            await _close(handler)
        return type(handler)

    adapter_log = logging.getLogger(f"mixerd.adapter.{subject.name}")
    gc.collect()
    enabled, flags, muted = gc.isenabled(), gc.get_debug(), adapter_log.disabled
    gc.disable()
    adapter_log.disabled = True
    try:
        kind = asyncio.run(use_and_close())
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        garbage = list(gc.garbage)
    finally:
        adapter_log.disabled = muted
        gc.garbage.clear()
        gc.set_debug(flags)
        if enabled:
            gc.enable()
    for handler in (o for o in garbage if type(o) is kind):
        cycle = _cycle_through(handler, garbage)
        if cycle:
            types = Counter(type(o).__name__ for o in cycle).most_common(8)
            listed = ", ".join(f"{name} x{count}" for name, count in types)
            raise AssertionError(
                f"a closed {kind.__name__} is in a reference cycle, so it is only freed by a full garbage "
                f"collection, which never frees it in mixerd serve (frozen heap). In the cycle: {listed}"
            )


def _cycle_through(start: object, garbage: list[Any]) -> list[Any]:
    """The objects of `garbage` on some path from `start` back to itself ([] when there is none). Garbage
    that only refers to the handler (an exception's traceback of a failed send, freed by the next young
    collection) is not a cycle of the handler's own."""
    members = {id(o): o for o in garbage}
    parent: dict[int, int] = {}
    frontier = [start]
    while frontier:
        node = frontier.pop()
        for child in gc.get_referents(node):
            if child is start:
                path, at = [node], id(node)
                while at in parent:
                    at = parent[at]
                    path.append(members[at])
                return path
            if id(child) in members and id(child) not in parent:
                parent[id(child)] = id(node)
                frontier.append(child)
    return []


#: Check name -> check, in the order they are best read (and run).
CHECKS: Mapping[str, Check] = {
    "adapter_info": check_adapter_info,
    "params_round_trip": check_params_round_trip,
    "validate_without_instances": check_validate_without_instances,
    "zero_instances_and_close_twice": check_zero_instances_and_close_twice,
    "methods_async_or_plain": check_methods_async_or_plain,
    "failed_build_leaves_nothing": check_failed_build_leaves_nothing,
    "closed_handler_leaves_no_cycle": check_closed_handler_leaves_no_cycle,
}


def run_check(name: str, subject: Subject) -> None:
    """Run one check, failing also when the adapter logs a warning `subject.warnings` does not allow."""
    with _refusing_adapter_warnings(subject.warnings):
        CHECKS[name](subject)


def conformance_tests(
    adapter: str | AdapterInfo,
    *,
    params: Mapping[str, Any] | None = None,
    raises: Mapping[str, type[Exception]] | None = None,
    warnings: str = "",
) -> Callable[..., None]:
    """A pytest test function, parametrized with one test per check, for `adapter`.

    `adapter` is an AdapterInfo or an adapter's name, looked up among the built-ins, the installed
    plugins and the modules named by the `mixerd_adapters` ini option (see `mixerd.pytest_plugin`).
    Assign the result to a `test_...` name in a test module. `params`, `raises` and `warnings` are
    those of `Subject`.
    """
    import pytest  # only test modules call this: mixerd itself runs without pytest

    @pytest.mark.parametrize("check", list(CHECKS))
    def test_conformance(check: str, request: pytest.FixtureRequest) -> None:
        info = adapter if isinstance(adapter, AdapterInfo) else _find(adapter, request.config)
        run_check(check, Subject(info, params, raises or {}, warnings))

    return test_conformance


def _find(name: str, config: pytest.Config) -> AdapterInfo:
    import pytest

    from .fixtures import adapters_for

    adapters = adapters_for(config)
    if name not in adapters:
        pytest.fail(
            f"no adapter {name!r} (there are {', '.join(adapters)}): install its package "
            "(pip install -e .) or name its module in the mixerd_adapters ini option",
            pytrace=False,
        )
    return adapters[name]


# -- how mixerd drives a handler ------------------------------------------------------------------------


class _FixedClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000 * _SECOND

    def __call__(self) -> int:
        return self.now


# Loopback and free ports: an adapter that listens (prometheus) must not need a fixed port.
_SETTINGS = Settings(address="127.0.0.1", prometheus_port=0)


def _env(name: str, params: Any) -> Env:
    return Env(
        handler=f"{name}.handler.conformance",
        adapter=name,
        params=params,
        instances={},
        logger=logging.getLogger(f"mixerd.adapter.{name}"),
        clock=_FixedClock(),
        settings=_SETTINGS,
    )


async def _build(info: AdapterInfo, env: Env) -> Any:
    handler = info.build(env)
    if inspect.isawaitable(handler):
        handler = await handler
    return handler


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a handler method the way the runtime does: awaited only if it is a coroutine function."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    result = fn(*args)
    if inspect.iscoroutine(result):
        result.close()  # never awaited: close it, so Python does not warn about it too
    assert not inspect.isawaitable(result), (
        f"{fn.__qualname__} is a plain def that returned an awaitable: the runtime would not await it; "
        "declare it `async def`"
    )
    return result


async def _close(handler: Any) -> None:
    close = getattr(handler, CLOSE, None)
    if close is None:
        return
    result = close()
    if inspect.isawaitable(result):
        await result


def _zero_args(template: str) -> tuple[Any, ...]:
    t = TEMPLATES[template]
    instance = t.instance(name=ZERO_NAME)
    if t.variety == Variety.REPORT:
        return ([instance],)
    if t.variety == Variety.QUOTA:
        return (instance, QuotaArgs(amount=1, dedup_id="conformance"))
    return (instance,)


def _nothing_else_running() -> bool:
    return asyncio.all_tasks() == {asyncio.current_task()}


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _refusing_adapter_warnings(allowed: str) -> Iterator[None]:
    """Fail when an adapter logger logs a warning or an error that `allowed` does not match."""
    logger = logging.getLogger("mixerd.adapter")
    records = _Records()
    level = logger.level
    logger.setLevel(min(logger.getEffectiveLevel(), logging.WARNING))
    logger.addHandler(records)
    try:
        yield
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)
    pattern = re.compile(allowed) if allowed else None
    noisy = [
        f"{r.name}: {r.getMessage()}"
        for r in records.records
        if not (pattern is not None and pattern.search(r.getMessage()))
    ]
    assert not noisy, f"the adapter logged: {noisy}"
