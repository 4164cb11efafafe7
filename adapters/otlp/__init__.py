"""otlp (and zipkin): tracespan instances exported as OpenTelemetry spans over OTLP/gRPC.

Each tracespan instance becomes one span, with its trace and span ids taken from the instance, client or
server kind, a status from the HTTP status and its tags as attributes (spans.py, as OpenTelemetry SDK
spans). Spans are exported in batches in the background (handler.py) by opentelemetry-exporter-otlp's
OTLPSpanExporter (exporter.py): a receiver that is down or slow never slows a Report. The module
answers two adapters: `otlp`, with the exporter's own params (endpoint, headers, TLS, timeout,
sampling, batching), and `zipkin`, which accepts Mixer's zipkin params (url, sample_probability) and
maps them onto the same exporter. See docs/adapters/otlp.md.
"""

from __future__ import annotations

from collections.abc import Mapping

from mixerd.adapter import AdapterInfo, InstanceInfo, Problem, hookimpl

from .handler import OtlpHandler, build, build_zipkin
from .params import Params, Tls, ZipkinParams, zipkin_to_otlp

__all__ = [
    "OtlpHandler",
    "Params",
    "Tls",
    "ZipkinParams",
    "build",
    "build_zipkin",
    "mixerd_adapter_info",
    "validate",
    "zipkin_to_otlp",
]

_NEEDED = (("trace_id", "traceId"), ("span_id", "spanId"))


def validate(params: object, instances: Mapping[str, InstanceInfo]) -> list[Problem]:
    """Every tracespan instance sent to the handler sets a trace id and a span id: without them no
    instance could ever be a span. Pure: no network, no files."""
    problems: list[Problem] = []
    for name, info in sorted(instances.items()):
        if info.template != "tracespan":
            continue
        missing = [yaml_name for field, yaml_name in _NEEDED if field not in info.types]
        if missing:
            fields = " and ".join(missing)
            problems.append(("", f"instance {name!r} sets no {fields}: none of its spans could be exported"))
    return problems


@hookimpl
def mixerd_adapter_info() -> list[AdapterInfo]:
    return [
        AdapterInfo(
            name="otlp",
            templates=("tracespan",),
            params=Params,
            build=build,
            validate=validate,
            description="Exports tracespan instances as OpenTelemetry spans over OTLP/gRPC",
        ),
        AdapterInfo(
            name="zipkin",
            templates=("tracespan",),
            params=ZipkinParams,
            build=build_zipkin,
            validate=validate,
            description="Mixer's zipkin params, exporting spans over OTLP/gRPC like the otlp adapter",
        ),
    ]
