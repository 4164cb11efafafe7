"""The adapter SDK: everything an adapter imports from mixerd, in one place (`from mixerd.adapter import X`).

An adapter is described by one `AdapterInfo` (returned from the `mixerd_adapter_info` hook, marked with
`hookimpl`; `mixerd.hookspecs` is the manual). Its life, per handler resource that rules use:

1. `validate(params, instances)`: pure checks, no network (config time, also `mixerd check-config`);
2. `build(env)`: returns the handler (may be async; may start background work through `env`);
3. `handler.handle_<template>(...)` on the request path, sync or async (one method per template);
   an adapter that declares `rate_limits` also has `handler.handle_rate_limits(calls)` (Envoy's RLS);
4. `handler.close()`: idempotent, sync or async, called once the handler's last request has finished.

What is here:

- the contract: `AdapterInfo`, `Env`, `InstanceInfo`, the results (`CheckResult`, `QuotaResult`, ...),
  `Code` (google.rpc codes) and `hookimpl`;
- the handler `Protocol`s: one per template (`MetricHandler`, ...) and one per optional method
  (`SupportsQuotaBatch`, `SupportsRateLimits`, `SupportsDeliveryStats`, `SupportsClose`, ...);
- the instances handlers receive (`MetricInstance`, `QuotaInstance`, ...) and `Variety`;
- attribute values and their text: `Duration`, `Timestamp`, `ValueType`, `ip_text`, `go_ip_text`,
  `utc_micros_text`, `format_go_duration`;
- params models: `read_params`, `Problem`, `ParamsError`, `camel`, `params_to_dict` (see `mixerd.params`);
- helpers: `BatchQueue` and `SendProgress` (delivery for telemetry handlers), `BackgroundHttpServer`
  (an HTTP endpoint of a handler's own), `compile_regex` (RE2), the quota helpers (`dimension_texts`,
  `matching_override`, `unconfigured_quotas`), and `MIXERD_VERSION`.

The modules these come from keep working for existing imports, but only this one is the SDK: built-in
adapters import nothing else of mixerd, and a third-party adapter should not either.
"""

from __future__ import annotations

from .. import __version__ as MIXERD_VERSION
from ..api.policy.v1beta1.http_response_pb2 import HttpStatusCode
from ..attribute.godur import format_go_duration, parse_go_duration
from ..attribute.values import Duration, Timestamp, ValueType, go_ip_text, ip_text, parse_ip, utc_micros_text
from ..batching import BatchQueue, BatchStats, SendProgress
from ..hookspecs import hookimpl
from ..http_server import BackgroundHttpServer
from ..params import ParamsError, Problem, camel, params_to_dict, read_params
from ..regex import Regex, RegexError, compile_regex
from ..settings import Settings
from ..templates import (
    Action,
    ApiKeyInstance,
    AuthorizationInstance,
    CheckNothingInstance,
    KubernetesInstance,
    ListEntryInstance,
    LogEntryInstance,
    MetricInstance,
    QuotaInstance,
    ReportNothingInstance,
    Subject,
    TraceSpanInstance,
    Variety,
)
from ._env import Clock, Env, InstanceInfo
from ._info import AdapterInfo, Build, Validate
from ._protocols import (
    BACKEND_STATE,
    CLOSE,
    DELIVERY_STATS,
    GENERATION_STATS,
    HANDLE_QUOTAS,
    HANDLE_RATE_LIMITS,
    SPAN_COUNTS,
    TEMPLATE_PROTOCOLS,
    TOP_COUNTERS,
    ApiKeyHandler,
    AuthorizationHandler,
    CheckNothingHandler,
    KubernetesHandler,
    ListEntryHandler,
    LogEntryHandler,
    MetricHandler,
    QuotaHandler,
    ReportNothingHandler,
    SupportsBackendState,
    SupportsClose,
    SupportsDeliveryStats,
    SupportsGenerationStats,
    SupportsQuotaBatch,
    SupportsRateLimits,
    SupportsSpanCounts,
    SupportsTopCounters,
    TraceSpanHandler,
)
from ._quota import Dimensions, dimension_text, dimension_texts, matching_override, unconfigured_quotas
from ._results import (
    CheckResult,
    Code,
    DirectResponse,
    QuotaArgs,
    QuotaResult,
    RateLimit,
    RateLimitAlgorithm,
    RateLimitCall,
    RateLimitResult,
)

__all__ = [
    "BACKEND_STATE",
    "CLOSE",
    "DELIVERY_STATS",
    "GENERATION_STATS",
    "HANDLE_QUOTAS",
    "HANDLE_RATE_LIMITS",
    "MIXERD_VERSION",
    "SPAN_COUNTS",
    "TEMPLATE_PROTOCOLS",
    "TOP_COUNTERS",
    "Action",
    "AdapterInfo",
    "ApiKeyHandler",
    "ApiKeyInstance",
    "AuthorizationHandler",
    "AuthorizationInstance",
    "BackgroundHttpServer",
    "BatchQueue",
    "BatchStats",
    "Build",
    "CheckNothingHandler",
    "CheckNothingInstance",
    "CheckResult",
    "Clock",
    "Code",
    "Dimensions",
    "DirectResponse",
    "Duration",
    "Env",
    "HttpStatusCode",
    "InstanceInfo",
    "KubernetesHandler",
    "KubernetesInstance",
    "ListEntryHandler",
    "ListEntryInstance",
    "LogEntryHandler",
    "LogEntryInstance",
    "MetricHandler",
    "MetricInstance",
    "ParamsError",
    "Problem",
    "QuotaArgs",
    "QuotaHandler",
    "QuotaInstance",
    "QuotaResult",
    "RateLimit",
    "RateLimitAlgorithm",
    "RateLimitCall",
    "RateLimitResult",
    "Regex",
    "RegexError",
    "ReportNothingHandler",
    "ReportNothingInstance",
    "SendProgress",
    "Settings",
    "Subject",
    "SupportsBackendState",
    "SupportsClose",
    "SupportsDeliveryStats",
    "SupportsGenerationStats",
    "SupportsQuotaBatch",
    "SupportsRateLimits",
    "SupportsSpanCounts",
    "SupportsTopCounters",
    "Timestamp",
    "TraceSpanHandler",
    "TraceSpanInstance",
    "Validate",
    "ValueType",
    "Variety",
    "camel",
    "compile_regex",
    "dimension_text",
    "dimension_texts",
    "format_go_duration",
    "go_ip_text",
    "hookimpl",
    "ip_text",
    "matching_override",
    "params_to_dict",
    "parse_go_duration",
    "parse_ip",
    "read_params",
    "unconfigured_quotas",
    "utc_micros_text",
]
