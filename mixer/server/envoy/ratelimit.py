"""envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit: Envoy's rate limit service (RLS).

A request's domain picks a `ratelimitconfig` of the config in force (read from the runtime's routing
table once per request); its descriptors are matched as envoyproxy/ratelimit matches them and every
limit they hit is counted by the config's handler (memquota or redisquota) in one call
(mixerd.runtime.ratelimit). The answer has one status per descriptor, in the request's order, each with
its `current_limit`, `limit_remaining` and `duration_until_reset` (whole seconds); the overall code is
OVER_LIMIT as envoyproxy/ratelimit decides it (quota and global shadow modes). Response headers and
dynamic metadata when the settings ask for them (ratelimit_response.py).

- A domain no config has: OK for every descriptor (as envoyproxy/ratelimit), counted in
  `mixerd_ratelimit_domain_not_found_total`.
- A malformed request: INVALID_ARGUMENT naming the field (`descriptors[1].entries: must not be empty`),
  or `malformed RateLimitRequest: ...` for bytes that are not one.
- A backend that cannot be reached: the handler answers as its fail policy says (redisquota's
  `failPolicy: open` -> OK, `closed` -> OVER_LIMIT), within its own timeout. A handler that raises or
  does not answer within the caller's deadline (80% of it): UNAVAILABLE, and Envoy applies its own
  `failure_mode_deny`.
- mixerd itself fails: INTERNAL `mixerd internal error in ShouldRateLimit (<type>); see the server log`,
  logged with its traceback (server/frontend.py, as the other front-ends).

docs/envoy/ratelimit.md is the user's reference.
"""

from __future__ import annotations

import logging
import time
from time import perf_counter
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError

from ...api.envoy.service.ratelimit.v3 import rls_pb2
from ...config.ratelimit_model import UNIT_NAMES, CurrentLimit
from ...runtime.ratelimit import DescriptorRequest, RateLimiter, RateLimitFailed, RateLimitOptions
from ..decisions import OFF, RATELIMIT, DecisionLog
from ..frontend import Method, Rejection, StatusCounter
from ..raw_handlers import ENVOY_RATE_LIMIT_SERVICE, add_raw_handlers
from ..stats import RATELIMIT_API, Stats
from .ratelimit_response import NO_EXTRAS, ResponseOptions, encode
from .ratelimit_stats import RateLimitCollector, RateLimitStats
from .ratelimit_statsd import StatsdSink

if TYPE_CHECKING:
    from . import FrontEndContext

SERVICE_NAME = ENVOY_RATE_LIMIT_SERVICE

_log = logging.getLogger(__name__)
_METHOD = Method("ShouldRateLimit", _log)
_INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
_Request = rls_pb2.RateLimitRequest
_CODE_NAMES = {1: "OK", 2: "OVER_LIMIT"}
_UNITS = ", ".join(UNIT_NAMES[n] for n in sorted(UNIT_NAMES))


class BadRequest(ValueError):
    """A malformed RateLimitRequest; the message names the field."""


def decode(request: Any) -> tuple[str, list[DescriptorRequest]]:
    """The request's domain and descriptors; BadRequest for a malformed one."""
    domain = request.domain
    if not domain:
        raise BadRequest("domain: must not be empty")
    if not request.descriptors:
        raise BadRequest("descriptors: must not be empty (send at least one descriptor)")
    default_hits = request.hits_addend or 1
    out = []
    for i, descriptor in enumerate(request.descriptors):
        entries = descriptor.entries
        if not entries:
            raise BadRequest(f"descriptors[{i}].entries: must not be empty")
        pairs = []
        for j, entry in enumerate(entries):
            if not entry.key:
                raise BadRequest(f"descriptors[{i}].entries[{j}].key: must not be empty")
            pairs.append((entry.key, entry.value))
        override = None
        if descriptor.HasField("limit"):
            unit = descriptor.limit.unit
            if unit not in UNIT_NAMES:
                raise BadRequest(f"descriptors[{i}].limit.unit: {_unit_text(unit)} is not one of {_UNITS}")
            override = CurrentLimit(descriptor.limit.requests_per_unit, unit)
        hits = descriptor.hits_addend.value if descriptor.HasField("hits_addend") else default_hits
        out.append(DescriptorRequest(tuple(pairs), hits, override))
    return domain, out


def _unit_text(unit: int) -> str:
    names = rls_pb2.RateLimitResponse.RateLimit.Unit
    try:
        return names.Name(unit)
    except ValueError:
        return str(unit)


class RateLimitService:
    """ShouldRateLimit over raw bytes (grpc's registered-method path); `add_to_server` registers it."""

    def __init__(
        self,
        limiter: RateLimiter,
        stats: RateLimitStats,
        options: ResponseOptions = NO_EXTRAS,
        decisions: DecisionLog = OFF,
        server_stats: Stats | None = None,
    ) -> None:
        self._limiter = limiter
        self._decisions = decisions
        self._stats = stats
        self._options = options
        self._seconds = (server_stats or Stats()).durations.of(RATELIMIT_API)

    def add_to_server(self, server: grpc.aio.Server) -> None:
        handlers = {"ShouldRateLimit": grpc.unary_unary_rpc_method_handler(self.should_rate_limit)}
        add_raw_handlers(server, SERVICE_NAME, handlers)

    async def should_rate_limit(self, raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
        started = perf_counter()
        try:
            return await self._should_rate_limit(raw, context)
        finally:  # answered or aborted (abort raises)
            self._seconds.observe(perf_counter() - started)

    async def _should_rate_limit(self, raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
        try:
            request = _Request.FromString(raw)
        except DecodeError as e:
            error = Rejection(_INVALID_ARGUMENT, f"malformed RateLimitRequest: {e}")
            await _METHOD.abort(context, error, self._counter("", known=False))
        try:
            domain, descriptors = decode(request)
        except BadRequest as e:
            known = self._limiter.knows(request.domain)
            await _METHOD.abort(
                context, Rejection(_INVALID_ARGUMENT, str(e)), self._counter(request.domain, known)
            )
        note = self._decisions.begin(RATELIMIT)  # None unless this decision is logged
        try:
            decision = await self._limiter.decide(domain, descriptors, context.time_remaining())
        except RateLimitFailed as e:
            error = Rejection(grpc.StatusCode.UNAVAILABLE, f"rate limit domain {domain!r}: {e}")
            if note is not None:
                note.rate_limited(domain, descriptors, None, context.invocation_metadata(), error)
            await _METHOD.abort(context, error, self._counter(domain, known=True))
        except Exception as e:  # a bug: logged, and a generic answer (no internals on the wire)
            await _METHOD.abort(context, e, self._counter(domain, known=True))
        self._stats.record(domain, decision, _CODE_NAMES[decision.code])
        if note is not None:
            note.rate_limited(domain, descriptors, decision, context.invocation_metadata())
        return encode(decision, request, self._options).SerializeToString()

    def _counter(self, domain: str, known: bool) -> StatusCounter:
        """Counts a refused call of `domain` by its status's name."""
        return lambda code: self._stats.failed(domain, code.name, known=known)


def add_to_server(server: grpc.aio.Server, context: FrontEndContext) -> str:
    runtime = context.runtime
    settings = context.settings
    clock = runtime.clock if runtime is not None else time.time_ns
    limiter = RateLimiter(runtime, clock, settings.adapter_timeout, RateLimitOptions.of(settings))
    stats = RateLimitStats()
    context.registry.register(RateLimitCollector(stats))
    if settings.ratelimit_statsd_address is not None:
        sink = StatsdSink(stats, settings.ratelimit_statsd_address, settings.ratelimit_stats_flush_interval)
        if runtime is not None:
            sink.config_loads = lambda: (runtime.stats.config_loads, runtime.stats.config_rejections)
        sink.start()
        context.closers.append(sink.close)
    service = RateLimitService(limiter, stats, ResponseOptions.of(settings), context.decisions, context.stats)
    service.add_to_server(server)
    return SERVICE_NAME
