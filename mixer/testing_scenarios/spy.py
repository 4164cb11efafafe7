"""`spy`: a test adapter that records every call it gets and answers as its params say.

It supports every template but the attribute generator: check templates answer `checkStatus` (with
`checkMessage`, `validDuration`, `validUseCount`), quota grants `quotaGrant` units (-1: what was
asked), report templates take their instances. A non-empty `fail` makes every call raise
RuntimeError(fail), which is how an adapter error looks to the runtime. With a `delay` the methods
are coroutines that answer after that long (a slow or, with a long delay, a hanging backend). A call
that reaches a spy after its close() raises, so a handler closed too early shows up as a failed
request.

Each recorded `SpyCall` holds the handler FQN, the template and the instances of that one call, so a
test can see how the runtime batched them (Report: one call per handler x template per request).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..adapter import AdapterInfo, CheckResult, Code, Duration, Env, QuotaArgs, QuotaResult

SPY = "spy"

_CHECK = ("checknothing", "listentry", "authorization", "apikey")
_REPORT = ("logentry", "metric", "tracespan", "reportnothing")
_MINUTE = Duration(60 * 1_000_000_000)
_NO_DELAY = Duration(0)


@dataclass
class SpyParams:
    check_status: int = int(Code.OK)
    check_message: str = ""
    valid_duration: Duration = _MINUTE
    valid_use_count: int = 10000
    quota_grant: int = -1  # -1: grant the amount asked for
    quota_valid_duration: Duration = _MINUTE
    fail: str = ""  # not empty: every call raises RuntimeError(fail)
    delay: Duration = _NO_DELAY  # > 0: the methods are async and answer after this long


@dataclass(frozen=True)
class SpyCall:
    handler: str
    template: str
    instances: tuple[Any, ...]
    quota: QuotaArgs | None = None


@dataclass
class SpyRecorder:
    """Every call made to spy handlers built with it, in order; and which handlers were closed."""

    calls: list[SpyCall] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, call: SpyCall) -> None:
        with self._lock:
            self.calls.append(call)

    def take(self) -> list[SpyCall]:
        """The calls recorded since the last take."""
        with self._lock:
            out, self.calls = self.calls, []
        return out


class SpyHandler:
    """Methods are plain functions, or coroutine functions that first sleep `delay` when it is > 0."""

    def __init__(self, env: Env, recorder: SpyRecorder) -> None:
        self.env = env
        self.params: SpyParams = env.params
        self.recorder = recorder
        self.closed = False
        p = self.params
        self.result = CheckResult(
            status=p.check_status,
            message=p.check_message,
            valid_duration=p.valid_duration,
            valid_use_count=p.valid_use_count,
        )
        self._methods: dict[str, Callable[..., Any]] = {}
        for template in _CHECK:
            self._methods[template] = self._method(template, lambda _args: self.result)
        for template in _REPORT:
            self._methods[template] = self._method(template, lambda _args: None)
        self._methods["quota"] = self._method("quota", self._grant)

    def _grant(self, args: QuotaArgs | None) -> QuotaResult:
        amount = args.amount if args is not None else 0
        grant = amount if self.params.quota_grant < 0 else self.params.quota_grant
        return QuotaResult(granted_amount=grant, valid_duration=self.params.quota_valid_duration)

    def _answer(self, template: str, arg: Any, quota: QuotaArgs | None, answer: Callable[[Any], Any]) -> Any:
        if self.closed:
            raise RuntimeError(f"spy handler {self.env.handler} called after close()")
        instances = tuple(arg) if template in _REPORT else (arg,)
        self.recorder.add(SpyCall(self.env.handler, template, instances, quota))
        if self.params.fail:
            raise RuntimeError(self.params.fail)
        return answer(quota)

    def _method(self, template: str, answer: Callable[[Any], Any]) -> Callable[..., Any]:
        delay = self.params.delay.total_seconds()
        if delay <= 0:

            def handle(arg: Any, quota: QuotaArgs | None = None) -> Any:
                return self._answer(template, arg, quota, answer)

            return handle

        async def handle_later(arg: Any, quota: QuotaArgs | None = None) -> Any:
            await asyncio.sleep(delay)
            return self._answer(template, arg, quota, answer)

        return handle_later

    def __getattr__(self, name: str) -> Any:
        method = self.__dict__.get("_methods", {}).get(name.removeprefix("handle_"))
        if method is None or not name.startswith("handle_"):
            raise AttributeError(name)
        return method

    def close(self) -> None:
        self.closed = True
        with self.recorder._lock:
            self.recorder.closed.append(self.env.handler)


def spy_adapter(recorder: SpyRecorder, name: str = SPY) -> AdapterInfo:
    """The spy adapter, recording into `recorder`."""
    return AdapterInfo(
        name=name,
        templates=(*_CHECK, "quota", *_REPORT),
        params=SpyParams,
        build=lambda env: SpyHandler(env, recorder),
        description="Records every call (for tests)",
    )
