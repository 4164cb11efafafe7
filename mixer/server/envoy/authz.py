"""envoy.service.auth.v3.Authorization/Check (Envoy's ext_authz) in front of mixerd's Check dispatch.

Each CheckRequest's AttributeContext becomes an attribute bag (authz_attributes), the same dispatch as
`istio.mixer.v1.Mixer/Check` decides it (no quotas; the dedup id is `request.id`), and the
verdict becomes a CheckResponse (authz_response). A verdict cache (verdict_cache) keyed on the
attributes the rules read answers repeated requests without dispatching; `authz_cache_size` (verdicts)
and `authz_cache_bytes` (memory) bound it, and 0 for either turns it off. docs/envoy/authz.md is the
user's page.

Like the Mixer front-end, the service takes raw bytes (a generic handler without a deserializer), so
that bytes that are not a CheckRequest get INVALID_ARGUMENT rather than grpc's INTERNAL, and a cached
answer goes back as the bytes it was stored as.

gRPC statuses (the call's own status; a verdict, allow or deny, is always an OK call):
- bytes that are not a CheckRequest: INVALID_ARGUMENT `malformed CheckRequest: ...`;
- a field that cannot become an attribute: INVALID_ARGUMENT naming its path, e.g.
  `attributes.source.address.socket_address.address: 'x' is not an IP address`;
- a check adapter fails or times out, an instance cannot be built: INTERNAL
  `performing check operation failed: <handler FQN>: <reason>`;
- mixerd itself fails: INTERNAL `mixerd internal error in ext_authz Check (<type>); see the server log`.

Envoy counts a failed call as an ext_authz error: `failure_mode_allow: true` lets the request through,
otherwise Envoy answers `status_on_error` (403 by default). An answer with `error_response` set would be
treated the same by Envoy 1.40 but not by older versions, so a failure is a plain gRPC status.
"""

from __future__ import annotations

import logging
from time import perf_counter
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError as ProtobufDecodeError

from ...api.envoy.service.auth.v3 import external_auth_pb2
from ...attribute import AttributeBag
from ...dispatch import ALLOW, Dispatcher, DispatchError, QuotaRequest
from ..decisions import EXT_AUTHZ, OFF, DecisionLog
from ..frontend import Method, Rejection, check_failed
from ..raw_handlers import ENVOY_AUTHORIZATION, add_raw_handlers
from ..stats import EXT_AUTHZ_API, Stats
from .authz_attributes import AttributeView, BadAttributes
from .authz_metrics import AuthzCollector, AuthzStats
from .authz_response import response_bytes
from .verdict_cache import VerdictCache

if TYPE_CHECKING:
    from . import FrontEndContext

SERVICE_NAME = ENVOY_AUTHORIZATION

_log = logging.getLogger(__name__)

_CheckRequest = external_auth_pb2.CheckRequest
_NO_QUOTAS: dict[str, QuotaRequest] = {}
_ALLOW_BYTES = response_bytes(ALLOW)
_CHECK = Method("ext_authz Check", _log)
_INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT


class AuthorizationService:
    """The Check handler over raw bytes; `add_to_server(server)` registers it."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        cache: VerdictCache | None,
        stats: AuthzStats,
        decisions: DecisionLog = OFF,
        server_stats: Stats | None = None,
    ) -> None:
        self._dispatcher = dispatcher
        self._decisions = decisions
        self._cache = cache
        self._stats = stats
        self._seconds = (server_stats or Stats()).durations.of(EXT_AUTHZ_API)

    def add_to_server(self, server: grpc.aio.Server) -> None:
        handlers = {"Check": grpc.unary_unary_rpc_method_handler(self.check)}
        add_raw_handlers(server, SERVICE_NAME, handlers)

    async def check(self, raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
        started = perf_counter()
        try:
            body = await self._check(raw, context.time_remaining())
        except Exception as e:
            self._seconds.observe(perf_counter() - started)
            await _CHECK.abort(context, e, self._count_failure)
        self._seconds.observe(perf_counter() - started)
        return body

    def _count_failure(self, code: grpc.StatusCode) -> None:
        if code == _INVALID_ARGUMENT:
            self._stats.invalid += 1
        else:
            self._stats.error += 1

    async def _check(self, raw: bytes, timeout: float | None) -> bytes:
        try:
            request = _CheckRequest.FromString(raw)
        except ProtobufDecodeError as e:
            raise Rejection(_INVALID_ARGUMENT, f"malformed CheckRequest: {e}") from None
        try:
            view = AttributeView(request.attributes)
        except BadAttributes as e:
            raise Rejection(_INVALID_ARGUMENT, str(e)) from None

        note = self._decisions.begin(EXT_AUTHZ)  # None unless this decision is logged
        cache = self._cache
        generation = 0
        if cache is not None:
            # Keyed on the few attributes the rules read, computed from the view: no bag is built.
            generation = cache.generation()
            hit = cache.lookup(view)
            if hit is not None:
                self._stats.verdict(hit.code)
                if note is not None:
                    note.cached(view.get("request.id"), hit.body, hit.trace)
                return hit.body

        values = view.values()
        bag = AttributeBag.wrap(values)  # the dispatch reads it and never changes `values`
        request_id = values.get("request.id", "")
        try:
            if note is None:
                outcome = await self._dispatcher.check(bag, _NO_QUOTAS, request_id, timeout)
            else:
                outcome = await note.check(self._dispatcher, bag, _NO_QUOTAS, request_id, timeout)
        except DispatchError as e:
            raise check_failed(e) from None
        body = _ALLOW_BYTES if outcome is ALLOW else response_bytes(outcome)
        self._stats.verdict(outcome.status_code)
        if cache is not None:
            references = bag.reference_items() if outcome.references is None else outcome.references
            cache.store(
                generation,
                references,
                view,
                status_code=outcome.status_code,
                valid_duration_ns=outcome.valid_duration,
                valid_use_count=outcome.valid_use_count,
                body=body,
                generated=_generated_names(bag, values),
                trace=note.trace if note is not None else None,  # so a cached answer's record has its rules
            )
        return body


def _generated_names(bag: AttributeBag, values: dict[str, Any]) -> list[str]:
    """Attributes that attribute generators added to the bag (the request did not carry them)."""
    if len(bag) == len(values):
        return []
    return [name for name in bag.as_dict() if name not in values]


def add_to_server(server: grpc.aio.Server, context: FrontEndContext) -> str:
    """Register the Authorization service and its self metrics; returns the service's full name."""
    size, budget = context.settings.authz_cache_size, context.settings.authz_cache_bytes
    cache = None
    if size > 0 and budget > 0:
        runtime = context.runtime
        generation = (lambda: runtime.generation) if runtime is not None else (lambda: 0)
        cache = VerdictCache(size, max_bytes=budget, generation=generation)
    stats = AuthzStats()
    context.registry.register(AuthzCollector(stats, cache))
    AuthorizationService(context.dispatcher, cache, stats, context.decisions, context.stats).add_to_server(
        server
    )
    return SERVICE_NAME
