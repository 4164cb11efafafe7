"""prometheus: exports metric instances as Prometheus counters, gauges and histograms on one HTTP endpoint
(`--prometheus-port`, path `/metrics`) shared by every prometheus handler. See docs/adapters/prometheus.md.
"""

from __future__ import annotations

from mixerd.adapter import AdapterInfo, hookimpl

from .exporter import Exporter, current
from .handler import PrometheusHandler, build
from .params import (
    BucketsDefinition,
    ExplicitBuckets,
    ExponentialBuckets,
    Kind,
    LinearBuckets,
    MetricInfo,
    MetricsExpirationPolicy,
    Params,
)
from .validation import validate

__all__ = [
    "BucketsDefinition",
    "ExplicitBuckets",
    "ExponentialBuckets",
    "Exporter",
    "Kind",
    "LinearBuckets",
    "MetricInfo",
    "MetricsExpirationPolicy",
    "Params",
    "PrometheusHandler",
    "build",
    "current",
    "mixerd_adapter_info",
    "validate",
]


@hookimpl
def mixerd_adapter_info() -> AdapterInfo:
    return AdapterInfo(
        name="prometheus",
        templates=("metric",),
        params=Params,
        build=build,
        validate=validate,
        description="Exports metrics as Prometheus counters, gauges and histograms on one /metrics endpoint",
    )
