"""The public types an adapter works with; an adapter imports from here and from `mixerd.templates`.

An adapter is described by one `AdapterInfo` (returned from the `mixerd_adapter_info` hook, see
`mixerd.hookspecs` for the manual). Its life, per handler resource that rules use:

1. `validate(params, instances)`: pure checks, no network (config time, also `mixerd check-config`);
2. `build(env)`: returns the handler (may be async; may start background work through `env`);
3. `handler.handle_<template>(...)` on the request path, sync or async (one method per template);
   an adapter that declares `rate_limits` also has `handler.handle_rate_limits(calls)` (Envoy's RLS);
4. `handler.close()`: idempotent, sync or async, called once the handler's last request has finished.

Statuses are google.rpc codes (`Code`), the numbers gRPC statuses use too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from .attribute.values import Duration, ValueType
from .params import Problem
from .regex import Regex, RegexError, compile_regex
from .settings import Settings

__all__ = [
    "AdapterInfo",
    "CheckResult",
    "Clock",
    "Code",
    "DirectResponse",
    "Duration",
    "Env",
    "InstanceInfo",
    "QuotaArgs",
    "QuotaResult",
    "RateLimit",
    "RateLimitAlgorithm",
    "RateLimitCall",
    "RateLimitResult",
    "Regex",
    "RegexError",
    "ValueType",
    "Variety",
    "compile_regex",
]


class Code(IntEnum):
    """google.rpc.Code."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class Variety(IntEnum):
    """istio.mixer.adapter.model.v1beta1.TemplateVariety: when a template's instances are dispatched."""

    CHECK = 0
    REPORT = 1
    QUOTA = 2
    ATTRIBUTE_GENERATOR = 3
    CHECK_WITH_OUTPUT = 4


_SECOND = 1_000_000_000
_MINUTE: Duration = Duration(60 * _SECOND)
_NO_TIME: Duration = Duration(0)


@dataclass(frozen=True, slots=True)
class DirectResponse:
    """An HTTP answer the proxy sends instead of forwarding a denied request (MIXER.md 8.3).

    `code` 0 means "map it from the deny status" (PERMISSION_DENIED -> 403, ...).
    """

    code: int = 0
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A check handler's verdict on one instance.

    A denial is a non-OK `status` with a `message`; it is not an exception (an exception is an adapter
    error, and fails the whole Check with INTERNAL). The proxy may cache the verdict for
    `valid_duration` or `valid_use_count` uses, whichever runs out first; Check answers the minimum over
    every handler that answered.
    """

    status: int = Code.OK
    message: str = ""
    valid_duration: Duration = _MINUTE
    valid_use_count: int = 10000
    direct_response: DirectResponse | None = None


@dataclass(frozen=True, slots=True)
class QuotaArgs:
    """What a Check asks of one quota: `amount` units, all or nothing unless `best_effort`.

    `dedup_id` is the same on a retried request; quota handlers answer a repeated id with the earlier
    result instead of charging twice.
    """

    amount: int
    best_effort: bool = False
    dedup_id: str = ""


@dataclass(frozen=True, slots=True)
class QuotaResult:
    """A quota handler's grant. A denial is `granted_amount` 0 (with an OK status, as in Mixer)."""

    granted_amount: int
    valid_duration: Duration = _NO_TIME
    status: int = Code.OK
    message: str = ""


class RateLimitAlgorithm(IntEnum):
    """How a rate limit counts its window (the values of redisquota's `rateLimitAlgorithm`)."""

    FIXED_WINDOW = 0
    ROLLING_WINDOW = 1


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `max_amount` hits per `window`.

    FIXED_WINDOW windows are aligned to the Unix epoch (one starts whenever the clock is a whole number
    of windows), as envoyproxy/ratelimit's are. ROLLING_WINDOW counts in buckets of `bucket_duration`,
    also aligned to the epoch; the window is the last ceil(window / bucket_duration) buckets, the
    current one included.
    """

    max_amount: int
    window: Duration
    algorithm: RateLimitAlgorithm = RateLimitAlgorithm.FIXED_WINDOW
    bucket_duration: Duration = _NO_TIME  # ROLLING_WINDOW only; > 0 and < window


@dataclass(frozen=True, slots=True)
class RateLimitCall:
    """One limit to count `hits` against, for Envoy's rate limit service (docs/envoy/ratelimit.md).

    The counter is named by `domain`, `entries` and the limit's window, algorithm and bucket duration:
    calls that agree on all of them count in one counter (also across replicas that share a backend),
    whatever their `max_amount`, so a changed limit applies to the counts already there.
    """

    domain: str
    entries: tuple[tuple[str, str], ...]  # (key, value) pairs, in the descriptor's order
    limit: RateLimit
    hits: int = 1


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    """What one RateLimitCall came to.

    All or nothing: `allowed` when the hits fit in what the window has left (they are then counted);
    a call that is not allowed counts nothing. `hits` 0 is allowed and counts nothing. `remaining` is
    what the window has left after the call; `reset` how long until room opens again (FIXED_WINDOW: the
    window's end; ROLLING_WINDOW: the moment the oldest counted bucket leaves the window; 0 when nothing
    is counted). A backend that cannot answer gives a non-OK `status` and `message`, with `allowed` as
    the handler's fail policy says.
    """

    allowed: bool
    remaining: int = 0
    reset: Duration = _NO_TIME
    status: int = Code.OK
    message: str = ""


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    """What a handler is told, at build time, about one instance that rules send it.

    `types` maps each field to the ValueType its expression has (a map field maps to a dict of key ->
    ValueType, a nested message to a dict of its fields); adapters use it, for instance, to print an
    IP_ADDRESS value (raw bytes) as text.
    """

    name: str  # the instance's FQN, e.g. requestcount.instance.istio-system
    template: str
    types: Mapping[str, Any] = field(default_factory=dict)


Clock = Callable[[], int]  # nanoseconds since the Unix epoch


class Env:
    """A handler's view of the server: its identity, params, logger, clock, settings and background work.

    Background tasks started with `spawn` or `every` are cancelled when the handler is closed, so a
    handler never has to track them itself. Both need the running event loop, which `build` has.
    """

    def __init__(
        self,
        *,
        handler: str,
        adapter: str,
        params: Any,
        instances: Mapping[str, InstanceInfo],
        logger: logging.Logger | None = None,
        clock: Clock = time.time_ns,
        settings: Settings | None = None,
    ) -> None:
        self.handler = handler
        self.adapter = adapter
        self.params = params
        self.instances = instances
        self.logger = logger or logging.getLogger(f"mixerd.adapter.{adapter}")
        self.clock = clock
        # The server's settings (an Env made outside a server gets the defaults).
        self.settings = settings if settings is not None else Settings()
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Callable[[], Awaitable[Any]], *, name: str = "") -> asyncio.Task[Any]:
        """Run the coroutine `work()` in the background until it ends or the handler is closed.

        A failure is logged, not raised anywhere.
        """
        task = asyncio.get_running_loop().create_task(work(), name=name or f"{self.handler} background")
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def every(self, interval_s: float, work: Callable[[], Any], *, name: str = "") -> asyncio.Task[Any]:
        """Call `work()` (sync or async) every `interval_s` seconds; a failing call is logged and the
        schedule goes on. The first call is one interval after this one."""
        if not interval_s > 0:
            raise ValueError(f"{self.handler}: every() needs a positive interval, got {interval_s!r}")

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval_s)
                try:
                    result = work()
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:
                    self.logger.exception("%s: periodic work failed", self.handler)

        return self.spawn(loop, name=name or f"{self.handler} every {interval_s}s")

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.logger.error("%s: background task failed", self.handler, exc_info=task.exception())

    async def cancel_background(self) -> None:
        """Cancel every background task (the runtime calls this when the handler is closed)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


Validate = Callable[[Any, Mapping[str, InstanceInfo]], Iterable[Problem]]
Build = Callable[[Env], Any]


@dataclass(frozen=True)
class AdapterInfo:
    """One adapter, as its plugin declares it.

    - `name`: what handlers name in `compiledAdapter` (and the legacy kind of the same name);
    - `templates`: the templates its handlers accept (each needs a `handle_<template>` method);
    - `params`: a dataclass whose defaults are the default config (see `mixerd.params`);
    - `build(env)`: returns a handler (or an awaitable of one);
    - `validate(params, instances)`: optional pure checks returning (field path, reason) pairs;
    - `rate_limits`: its handlers implement `handle_rate_limits(calls)`, so a `ratelimitconfig` may
      name them to count Envoy's rate limits.
    """

    name: str
    templates: tuple[str, ...]
    params: type
    build: Build
    validate: Validate | None = None
    description: str = ""
    rate_limits: bool = False
