"""What a handler implements, as `Protocol`s a type checker holds an adapter to.

A handler is any object; mixerd looks its methods up by name when it builds the routing table. Each
template's instances go to one `handle_<template>` method (a Protocol per template below), and a
handler may add the optional methods (`SupportsQuotaBatch`, `SupportsRateLimits`, the stats methods,
`SupportsClose`). Any method may be a plain `def` (called inline) or an `async def` (awaited); both run
on the event loop, so neither may block. Subclass the Protocols your handler implements
(`class MyHandler(MetricHandler, SupportsClose)`) and a type checker tells you what is missing or
mistyped.

The runtime uses the names below (never string literals of its own), so this module is where every
method mixerd may call on a handler is named.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Protocol

from ..templates import (
    ApiKeyInstance,
    AuthorizationInstance,
    CheckNothingInstance,
    KubernetesInstance,
    ListEntryInstance,
    LogEntryInstance,
    MetricInstance,
    QuotaInstance,
    ReportNothingInstance,
    TraceSpanInstance,
)
from ._results import CheckResult, QuotaArgs, QuotaResult, RateLimitCall, RateLimitResult

# -- one per template: REPORT methods take every instance of one Report request and answer nothing ------


class MetricHandler(Protocol):
    def handle_metric(self, instances: list[MetricInstance]) -> Awaitable[None] | None: ...


class LogEntryHandler(Protocol):
    def handle_logentry(self, instances: list[LogEntryInstance]) -> Awaitable[None] | None: ...


class TraceSpanHandler(Protocol):
    def handle_tracespan(self, instances: list[TraceSpanInstance]) -> Awaitable[None] | None: ...


class ReportNothingHandler(Protocol):
    def handle_reportnothing(self, instances: list[ReportNothingInstance]) -> Awaitable[None] | None: ...


# -- CHECK methods take one instance and answer a verdict (a denial is a non-OK status, not an exception) --


class ListEntryHandler(Protocol):
    def handle_listentry(self, instance: ListEntryInstance) -> CheckResult | Awaitable[CheckResult]: ...


class CheckNothingHandler(Protocol):
    def handle_checknothing(self, instance: CheckNothingInstance) -> CheckResult | Awaitable[CheckResult]: ...


class AuthorizationHandler(Protocol):
    def handle_authorization(
        self, instance: AuthorizationInstance
    ) -> CheckResult | Awaitable[CheckResult]: ...


class ApiKeyHandler(Protocol):
    def handle_apikey(self, instance: ApiKeyInstance) -> CheckResult | Awaitable[CheckResult]: ...


# -- QUOTA: one quota of one Check; a denial is granted_amount 0 -------------------------------------------


class QuotaHandler(Protocol):
    def handle_quota(
        self, instance: QuotaInstance, args: QuotaArgs
    ) -> QuotaResult | Awaitable[QuotaResult]: ...


# -- ATTRIBUTE_GENERATOR: output field -> value -----------------------------------------------------------


class KubernetesHandler(Protocol):
    def handle_kubernetes(
        self, instance: KubernetesInstance
    ) -> Mapping[str, Any] | Awaitable[Mapping[str, Any]]: ...


#: Template name -> the Protocol of the method that receives its instances.
TEMPLATE_PROTOCOLS: Mapping[str, type] = MappingProxyType(
    {
        "metric": MetricHandler,
        "logentry": LogEntryHandler,
        "tracespan": TraceSpanHandler,
        "reportnothing": ReportNothingHandler,
        "listentry": ListEntryHandler,
        "checknothing": CheckNothingHandler,
        "authorization": AuthorizationHandler,
        "apikey": ApiKeyHandler,
        "quota": QuotaHandler,
        "kubernetes": KubernetesHandler,
    }
)

# -- optional methods -------------------------------------------------------------------------------------


class SupportsQuotaBatch(Protocol):
    """Every quota of one Check for this handler in one call, one result per pair in order; preferred
    over `handle_quota` when present (redisquota spends one Redis round trip on them)."""

    def handle_quotas(
        self, calls: Sequence[tuple[QuotaInstance, QuotaArgs]]
    ) -> Sequence[QuotaResult] | Awaitable[Sequence[QuotaResult]]: ...


class SupportsRateLimits(Protocol):
    """Envoy's rate limits (adapters that declare `rate_limits`): every limit of one ShouldRateLimit
    request in one call, one result per call in order."""

    def handle_rate_limits(
        self, calls: Sequence[RateLimitCall]
    ) -> Sequence[RateLimitResult] | Awaitable[Sequence[RateLimitResult]]: ...


class SupportsDeliveryStats(Protocol):
    """A telemetry handler's delivery counters (queued, sent, dropped, failed), published as
    `mixerd_adapter_delivery_<key>_total`. `BatchQueue.delivery_stats()` gives them."""

    def delivery_stats(self) -> Mapping[str, int]: ...


class SupportsSpanCounts(Protocol):
    """A tracing handler's counters (untraced, sampled_out, invalid): `mixerd_adapter_spans_<key>_total`."""

    def span_counts(self) -> Mapping[str, int]: ...


class SupportsGenerationStats(Protocol):
    """An attribute generator's counters (hits, misses, skipped, sync_failures):
    `mixerd_adapter_generation_<key>_total`."""

    def generation_stats(self) -> Mapping[str, int]: ...


class SupportsBackendState(Protocol):
    """A handler counting in a shared backend (redisquota: Redis) says how it sees it: `connected`
    (published as `mixerd_quota_backend_up`), `address` (never a password), `fail_policy` (`open` or
    `closed`), `fail_policy_answers` (answers given by the fail policy because the backend did not answer:
    `mixerd_quota_fail_policy_answers_total`), `last_error`, and any counters under `stats`. Read by
    /metrics and the admin page's Quotas view, off the event loop: read plain fields only."""

    def backend_state(self) -> Mapping[str, Any]: ...


class SupportsTopCounters(Protocol):
    """An in-memory quota handler's busiest counters now, at most `limit` per kind, for the admin page's
    Quotas view (memquota: `quotas` and `rate_limits`, each a list of counters with their use)."""

    def top_counters(self, limit: int) -> Mapping[str, Any]: ...


class SupportsClose(Protocol):
    """Called once after the handler's last request (reload or shutdown), after its background work is
    cancelled. Idempotent."""

    def close(self) -> Awaitable[None] | None: ...


# The names the runtime looks up, taken from the Protocols so a rename cannot leave one behind.
HANDLE_QUOTAS = SupportsQuotaBatch.handle_quotas.__name__
HANDLE_RATE_LIMITS = SupportsRateLimits.handle_rate_limits.__name__
DELIVERY_STATS = SupportsDeliveryStats.delivery_stats.__name__
SPAN_COUNTS = SupportsSpanCounts.span_counts.__name__
GENERATION_STATS = SupportsGenerationStats.generation_stats.__name__
BACKEND_STATE = SupportsBackendState.backend_state.__name__
TOP_COUNTERS = SupportsTopCounters.top_counters.__name__
CLOSE = SupportsClose.close.__name__
