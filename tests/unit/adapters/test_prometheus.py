"""prometheus: params and validation (exact messages, also through the config loader), naming and
sanitising, label and value conversion, bucket layouts, counters/gauges/histograms as scraped, skips,
expiry with an injected clock, redefinition across handlers, and the shared endpoint's life."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from mixerd.adapter import AdapterInfo, Env, InstanceInfo, ValueType
from mixerd.attribute.values import Duration, Timestamp
from mixerd.config import ConfigRejected, load_snapshot
from mixerd.params import ParamsError, params_to_dict, read_params
from mixerd.plugins import load_adapters
from mixerd.settings import Settings
from mixerd.templates import MetricInstance
from mixerd.testing_scenarios.server import parse_metrics
from mixerd_adapters import prometheus
from mixerd_adapters.prometheus import Kind, Params, PrometheusHandler, build, validate
from mixerd_adapters.prometheus import exporter as shared
from mixerd_adapters.prometheus.convert import (
    Unconvertible,
    format_double,
    format_label,
    label_formatter_for,
    to_float,
    value_converter_for,
)
from mixerd_adapters.prometheus.naming import (
    DEFAULT_BOUNDS,
    MetricDef,
    bucket_bounds,
    exported_name,
    safe_name,
)

REPO = Path(__file__).resolve().parents[3]
ISTIO = REPO / "tests" / "data" / "config" / "istio"
HANDLER = "prom.handler.istio-system"
COUNT = "requestcount.instance.istio-system"
DURATION = "requestduration.instance.istio-system"
LEVEL = "queuelevel.instance.istio-system"
SECOND = 1_000_000_000
T0 = 1_700_000_000 * SECOND
#: The adapter's endpoint on loopback, on a free port.
SETTINGS = Settings(address="127.0.0.1", prometheus_port=0)

COUNTER = {"name": "requests_total", "instanceName": COUNT, "kind": "COUNTER", "labelNames": ["code", "path"]}
HISTOGRAM = {
    "name": "request_duration_seconds",
    "instanceName": DURATION,
    "kind": "DISTRIBUTION",
    "labelNames": ["code"],
    "buckets": {"explicitBuckets": {"bounds": [0.01, 0.1, 1]}},
}
GAUGE = {"name": "queue_level", "instanceName": LEVEL, "kind": "GAUGE", "description": "items queued"}

INSTANCES = {
    COUNT: InstanceInfo(
        COUNT,
        "metric",
        {"value": ValueType.INT64, "dimensions": {"code": ValueType.INT64, "path": ValueType.STRING}},
    ),
    DURATION: InstanceInfo(
        DURATION, "metric", {"value": ValueType.DURATION, "dimensions": {"code": ValueType.INT64}}
    ),
    LEVEL: InstanceInfo(LEVEL, "metric", {"value": ValueType.DOUBLE, "dimensions": {}}),
}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def params(data: dict[str, Any]) -> Params:
    return read_params(Params, data)


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ParamsError) as e:
        read_params(Params, data)
    return [f"{path}: {reason}" for path, reason in e.value.problems]


def make_env(data: dict[str, Any], *, instances=None, clock=None, settings: Settings = SETTINGS) -> Env:
    return Env(
        handler=HANDLER,
        adapter="prometheus",
        params=params(data),
        instances=INSTANCES if instances is None else instances,
        clock=clock or Clock(),
        settings=settings,
    )


def run(work: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(work())


async def close(handler: PrometheusHandler, env: Env) -> None:
    await env.cancel_background()
    await handler.close()


def scrape(exporter: shared.Exporter) -> dict[str, float]:
    """Every sample the exporter serves (as the HTTP endpoint renders it), keyed name{labels sorted}."""
    return parse_metrics(generate_latest(exporter.registry).decode())


def count(code: int = 200, path: str = "/a", value: Any = 1) -> MetricInstance:
    return MetricInstance(name=COUNT, value=value, dimensions={"code": code, "path": path})


def duration(ms: float, code: int = 200) -> MetricInstance:
    return MetricInstance(name=DURATION, value=Duration(int(ms * 1_000_000)), dimensions={"code": code})


@pytest.fixture(autouse=True)
def _no_endpoint_left_behind():
    assert shared.current() is None
    yield
    assert shared.current() is None, "a test left the shared endpoint running"


# -- params -------------------------------------------------------------------------------------------


def test_defaults_export_nothing_and_never_expire() -> None:
    assert Params() == params({})
    assert (Params().metrics, Params().metrics_expiration_policy) == ([], None)


def test_istio_default_handler_params_read_as_mixer_meant_them() -> None:
    documents = list(yaml.safe_load_all((ISTIO / "istio-default-telemetry-config.rendered.yaml").read_text()))
    handler = next(
        d for d in documents if d and d["kind"] == "handler" and d["metadata"]["name"] == "prometheus"
    )
    p = params(handler["spec"]["params"])
    assert [(m.name, m.kind.name, len(m.label_names)) for m in p.metrics] == [
        ("requests_total", "COUNTER", 20),
        ("request_duration_seconds", "DISTRIBUTION", 20),
        ("request_bytes", "DISTRIBUTION", 20),
        ("response_bytes", "DISTRIBUTION", 20),
        ("tcp_sent_bytes_total", "COUNTER", 16),
        ("tcp_received_bytes_total", "COUNTER", 16),
        ("tcp_connections_opened_total", "COUNTER", 16),
        ("tcp_connections_closed_total", "COUNTER", 16),
    ]
    assert bucket_bounds(p.metrics[1].buckets) == (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
    assert bucket_bounds(p.metrics[2].buckets) == (1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8)
    policy = p.metrics_expiration_policy
    assert policy is not None
    assert (policy.metrics_expiry_duration, policy.check_interval) == (600 * SECOND, 300 * SECOND)
    assert read_params(Params, params_to_dict(p)) == p


def test_metric_info_problems() -> None:
    assert problems({"metrics": [{"name": "x", "kind": "COUNTER"}]}) == [
        ".metrics[0].instanceName: missing: this field has no default"
    ]
    assert problems({"metrics": [{"instanceName": "", "kind": "COUNTER"}, {"instanceName": "a"}]}) == [
        ".metrics[0].instanceName: must name the instance (its full name, "
        "e.g. requestcount.instance.istio-system)",
        ".metrics[1].kind: must be GAUGE, COUNTER or DISTRIBUTION",
    ]
    assert problems({"metrics": [{"instanceName": "a", "kind": "SUMMARY"}]}) == [
        ".metrics[0].kind: expected one of UNSPECIFIED, GAUGE, COUNTER, DISTRIBUTION, got 'SUMMARY'"
    ]


def test_bucket_problems() -> None:
    def buckets(definition: dict[str, Any]) -> list[str]:
        metric = {"instanceName": "a", "kind": "DISTRIBUTION", "buckets": definition}
        return problems({"metrics": [metric]})

    assert buckets({"linearBuckets": {"numFiniteBuckets": 0, "width": 0}}) == [
        ".metrics[0].buckets.linearBuckets.numFiniteBuckets: must be more than 0, got 0",
        ".metrics[0].buckets.linearBuckets.width: must be more than 0, got 0.0",
    ]
    assert buckets({"exponentialBuckets": {"numFiniteBuckets": 3, "growthFactor": 1, "scale": -1}}) == [
        ".metrics[0].buckets.exponentialBuckets.growthFactor: must be more than 1, got 1.0",
        ".metrics[0].buckets.exponentialBuckets.scale: must be more than 0, got -1.0",
    ]
    assert buckets({"explicitBuckets": {"bounds": [1, 5, 5, 2]}}) == [
        ".metrics[0].buckets.explicitBuckets.bounds[2]: bounds must increase: 5.0 follows 5.0",
        ".metrics[0].buckets.explicitBuckets.bounds[3]: bounds must increase: 2.0 follows 5.0",
    ]
    assert buckets({"explicitBuckets": {"bounds": []}}) == [
        ".metrics[0].buckets.explicitBuckets.bounds: must list at least one bound"
    ]
    assert buckets({"explicitBuckets": {"bounds": [1, math.inf]}}) == [
        ".metrics[0].buckets.explicitBuckets.bounds[1]: must be a finite number, got inf"
    ]
    two = {"explicitBuckets": {"bounds": [1]}, "linearBuckets": {"numFiniteBuckets": 1, "width": 1}}
    assert buckets(two) == [
        ".metrics[0].buckets: it is a oneof: set only one of linearBuckets, explicitBuckets"
    ]
    # `buckets: {}` sets none: the default buckets, as if it were left out
    assert (
        bucket_bounds(
            params({"metrics": [{"instanceName": "a", "kind": "DISTRIBUTION", "buckets": {}}]})
            .metrics[0]
            .buckets
        )
        == DEFAULT_BOUNDS
    )


def test_expiration_policy_problems_and_interval() -> None:
    assert problems({"metricsExpirationPolicy": {}}) == [
        ".metricsExpirationPolicy.metricsExpiryDuration: missing: this field has no default"
    ]
    assert problems(
        {"metricsExpirationPolicy": {"metricsExpiryDuration": "0s", "expiryCheckIntervalDuration": "-1s"}}
    ) == [
        ".metricsExpirationPolicy.metricsExpiryDuration: must be more than 0s, got 0s",
        ".metricsExpirationPolicy.expiryCheckIntervalDuration: must not be negative, got -1s",
    ]
    policy = params({"metricsExpirationPolicy": {"metricsExpiryDuration": "1m"}}).metrics_expiration_policy
    assert policy is not None and policy.check_interval == 30 * SECOND
    policy = params(
        {"metricsExpirationPolicy": {"metricsExpiryDuration": "1m", "expiryCheckIntervalDuration": "5s"}}
    ).metrics_expiration_policy
    assert policy is not None and policy.check_interval == 5 * SECOND


# -- validate -----------------------------------------------------------------------------------------


def validated(metrics: list[dict[str, Any]], instances=INSTANCES) -> list[str]:
    return [f"{path}: {reason}" for path, reason in validate(params({"metrics": metrics}), instances)]


def test_a_matching_config_is_valid() -> None:
    assert validated([COUNTER, HISTOGRAM, GAUGE]) == []
    assert validated([COUNTER, HISTOGRAM, GAUGE], instances={}) == []  # nothing routed: nothing to check


def test_dimensions_must_be_the_label_names() -> None:
    wrong = {**COUNTER, "labelNames": ["code", "method", "host"]}
    assert validated([wrong, HISTOGRAM, GAUGE]) == [
        ".metrics[0].labelNames: must be the dimensions of instance 'requestcount.instance.istio-system': "
        "no dimension for labels method, host; no label for dimension path"
    ]
    assert validated([{**COUNTER, "labelNames": ["code"]}, HISTOGRAM, GAUGE]) == [
        ".metrics[0].labelNames: must be the dimensions of instance 'requestcount.instance.istio-system': "
        "no label for dimension path"
    ]
    # compared after sanitising, as Mixer's client did: dimension `pa-th` is label `path`
    info = InstanceInfo(COUNT, "metric", {"dimensions": {"code": ValueType.INT64, "pa-th": ValueType.STRING}})
    assert validated([COUNTER], instances={COUNT: info}) == []
    clash = InstanceInfo(COUNT, "metric", {"dimensions": {"a.b": ValueType.STRING, "a_b": ValueType.STRING}})
    assert validated([{**COUNTER, "labelNames": ["a_b"]}], instances={COUNT: clash}) == [
        ".metrics[0].labelNames: dimensions 'a.b' and 'a_b' of instance "
        "'requestcount.instance.istio-system' both make label 'a_b'"
    ]


def test_every_routed_instance_needs_one_metric() -> None:
    assert validated([COUNTER]) == [
        ".metrics: no metric is configured for instance 'queuelevel.instance.istio-system', "
        "which rules send to this handler",
        ".metrics: no metric is configured for instance 'requestduration.instance.istio-system', "
        "which rules send to this handler",
    ]
    again = {**COUNTER, "name": "other_total"}
    assert validated([COUNTER, HISTOGRAM, GAUGE, again]) == [
        ".metrics[3].instanceName: instance 'requestcount.instance.istio-system' already has a metric "
        "(metrics[0]); give it one"
    ]


def test_one_exported_name_is_one_metric() -> None:
    gauge = {**GAUGE, "name": "requests_total"}
    other = InstanceInfo(LEVEL, "metric", {"dimensions": {}})
    assert validated([COUNTER, gauge], instances={COUNT: INSTANCES[COUNT], LEVEL: other}) == [
        ".metrics[1]: istio_requests_total is also defined by metrics[0], with another kind, labels, "
        "description; one exported name is one metric"
    ]
    # the same definition twice (two instances feeding one metric) is fine
    twin = {**COUNTER, "instanceName": "twin.instance.istio-system"}
    assert validated([COUNTER, twin], instances={}) == []
    # the same name in another namespace is another metric
    assert validated([COUNTER, {**gauge, "namespace": "mesh"}], instances={}) == []


def test_names_must_be_valid_prometheus_names() -> None:
    metrics = [
        {"name": "a+b", "instanceName": "x", "kind": "GAUGE"},
        {"instanceName": "y", "kind": "GAUGE", "namespace": "9lives"},
        {
            "name": "h",
            "instanceName": "z",
            "kind": "DISTRIBUTION",
            "labelNames": ["le", "__x", "a:b", "a.b", "a_b", "source-app"],
        },
    ]
    assert validated(metrics, instances={}) == [
        ".metrics[0].name: the exported name 'istio_a+b' is not a valid Prometheus metric name",
        ".metrics[1].namespace: the exported name '9lives_y' is not a valid Prometheus metric name",
        ".metrics[2].labelNames[0]: 'le' is the bucket label of a DISTRIBUTION; use another name",
        ".metrics[2].labelNames[1]: '__x' is not a valid Prometheus label name (as '__x')",
        ".metrics[2].labelNames[2]: 'a:b' is not a valid Prometheus label name (as 'a:b')",
        ".metrics[2].labelNames[4]: 'a_b' names the label 'a_b' again (labelNames[3])",
    ]


@dataclass
class _KubeParams:
    kubeconfig_path: str = ""


def _stub_kubernetesenv() -> dict[str, Any]:
    stub = AdapterInfo("kubernetesenv", ("kubernetes",), _KubeParams, build=lambda env: None)
    return {**load_adapters(), "kubernetesenv": stub}


def test_istios_default_config_is_valid_with_the_real_adapter() -> None:
    snapshot = load_snapshot(ISTIO, _stub_kubernetesenv())
    handler = snapshot.handlers["prometheus.handler.istio-system"]
    assert handler.adapter.name == "prometheus"
    assert validate(handler.params, handler.instances) == []


def test_a_label_mismatch_is_a_config_error_with_its_path(tmp_path: Path) -> None:
    (tmp_path / "prom.yaml").write_text(
        """
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: requestcount, namespace: istio-system}
spec:
  compiledTemplate: metric
  params:
    value: "1"
    dimensions:
      response_code: response.code | 200
      method: request.method | "-"
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: prom, namespace: istio-system}
spec:
  compiledAdapter: prometheus
  params:
    metrics:
    - name: requests_total
      instance_name: requestcount.instance.istio-system
      kind: COUNTER
      label_names: [code, method]
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: count, namespace: istio-system}
spec:
  actions:
  - handler: prom
    instances: [requestcount]
"""
    )
    with pytest.raises(ConfigRejected) as e:
        load_snapshot(tmp_path, load_adapters())
    assert [str(error) for error in e.value.errors] == [
        "prom.yaml: handler 'prom.handler.istio-system' .spec.params.metrics[0].labelNames: must be the "
        "dimensions of instance 'requestcount.instance.istio-system': no dimension for label code; "
        "no label for dimension response_code"
    ]


# -- naming -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("requests_total", "requests_total"),
        ("/a/b", "a_b"),
        ("//a", "_a"),
        ("a.b c", "a_b_c"),
        ("source-app", "sourceapp"),
        ("requestcount.instance.istio-system", "requestcount_instance_istiosystem"),
    ],
)
def test_safe_name(raw: str, safe: str) -> None:
    assert safe_name(raw) == safe


def test_exported_name() -> None:
    info = params({"metrics": [COUNTER]}).metrics[0]
    assert exported_name(info) == "istio_requests_total"
    unnamed = params(
        {"metrics": [{"instanceName": COUNT, "kind": "COUNTER", "namespace": "my-mesh.a"}]}
    ).metrics[0]
    assert exported_name(unnamed) == "mymesh_a_requestcount_instance_istiosystem"
    empty_namespace = params({"metrics": [{**GAUGE, "namespace": ""}]}).metrics[0]
    assert exported_name(empty_namespace) == "istio_queue_level"


def test_bucket_layouts() -> None:
    def bounds(definition: dict[str, Any]) -> tuple[float, ...]:
        info = params(
            {"metrics": [{"instanceName": "a", "kind": "DISTRIBUTION", "buckets": definition}]}
        ).metrics[0]
        return MetricDef.of(info).bounds

    assert bounds({"linearBuckets": {"numFiniteBuckets": 3, "width": 2.5, "offset": -1}}) == (-1, 1.5, 4, 6.5)
    assert bounds({"exponentialBuckets": {"numFiniteBuckets": 3, "growthFactor": 2, "scale": 0.5}}) == (
        0.5,
        1,
        2,
        4,
    )
    assert bounds({"explicitBuckets": {"bounds": [0.1, 1, 10]}}) == (0.1, 1, 10)
    assert DEFAULT_BOUNDS == (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
    counter = MetricDef.of(
        params({"metrics": [{**COUNTER, "buckets": {"explicitBuckets": {"bounds": [1]}}}]}).metrics[0]
    )
    assert counter.bounds == ()  # buckets only mean something to a DISTRIBUTION


# -- conversions --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("GET", "GET"),
        (200, "200"),
        (-7, "-7"),
        (0.25, "0.25"),
        (1.0, "1"),
        (1e21, "1000000000000000000000"),
        (1.5e-7, "0.00000015"),
        (-0.0, "-0"),
        (math.inf, "+Inf"),
        (math.nan, "NaN"),
        (True, "true"),
        (False, "false"),
        (ipaddress.ip_address("10.44.0.12").packed, "10.44.0.12"),
        (ipaddress.ip_address("2001:db8::1").packed, "2001:db8::1"),
        (ipaddress.ip_address("::ffff:10.0.0.1").packed, "10.0.0.1"),
        (b"", "<nil>"),
        (b"\x01\x02", "?0102"),
        (Timestamp.parse("2026-11-20T10:00:00.123456789Z"), "2026-11-20T10:00:00.123456Z"),
        (Timestamp(0), "1970-01-01T00:00:00.000000Z"),
        (Duration(1_500_000_000), "1.5s"),
        (Duration(10_000_000), "10ms"),
        (Duration(3_723 * SECOND), "1h2m3s"),
        ({"b": "2", "a": "1"}, "a=1&b=2"),
        ({}, ""),
    ],
)
def test_label_values(value: Any, text: str) -> None:
    assert format_label(value) == text


def test_label_formatters_by_inferred_type() -> None:
    assert label_formatter_for(ValueType.STRING) is None  # already text: no call on the hot path
    assert label_formatter_for(ValueType.DNS_NAME) is None
    assert label_formatter_for(ValueType.INT64)(42) == "42"
    assert label_formatter_for(ValueType.DOUBLE)(2.0) == "2"
    assert label_formatter_for(ValueType.DURATION)(Duration(SECOND)) == "1s"
    assert label_formatter_for(ValueType.IP_ADDRESS)(b"\x7f\x00\x00\x01") == "127.0.0.1"
    assert label_formatter_for(None)(Duration(SECOND)) == "1s"  # unknown type: by the value
    assert format_double(123456789.125) == "123456789.125"


@pytest.mark.parametrize(
    ("value", "number"),
    [
        (3, 3.0),
        (0.5, 0.5),
        (Duration(1_500_000_000), 1.5),
        (Duration(4_210_000), 0.00421),
        ("2.5", 2.5),
        ("1e3", 1000.0),
    ],
)
def test_values_that_are_numbers(value: Any, number: float) -> None:
    assert to_float(value) == number


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "the string 'abc' is not a number"),
        (" 1", "the string ' 1' is not a number"),
        ("1_000", "the string '1_000' is not a number"),
        (True, "a BOOL value (true) is not a number"),
        (Timestamp(5), "a TIMESTAMP value (1970-01-01T00:00:00.000000Z) is not a number"),
        (b"\x0a\x00\x00\x01", "an IP_ADDRESS value (10.0.0.1) is not a number"),
        ({"a": "b"}, "a STRING_MAP value (a=b) is not a number"),
        (None, "the instance has no value"),
        (object, "a type value (<class 'object'>) is not a number"),
    ],
)
def test_values_that_are_not_numbers(value: Any, message: str) -> None:
    with pytest.raises(Unconvertible) as e:
        to_float(value)
    assert str(e.value) == message


def test_value_converters_by_inferred_type() -> None:
    assert value_converter_for(ValueType.INT64)(7) == 7.0
    assert value_converter_for(ValueType.DURATION)(Duration(250_000_000)) == 0.25
    assert value_converter_for(ValueType.STRING)("0.5") == 0.5
    assert value_converter_for(ValueType.BOOL) is to_float  # raises for a bool, with its message


# -- the handler --------------------------------------------------------------------------------------


def test_counter_gauge_and_histogram_as_scraped() -> None:
    async def main() -> dict[str, float]:
        env = make_env({"metrics": [COUNTER, HISTOGRAM, GAUGE]})
        h = await build(env)
        try:
            h.handle_metric(
                [count(), count(), count(404, "/b", 3), duration(4.21), duration(50), duration(2000)]
            )
            h.handle_metric([MetricInstance(name=LEVEL, value=5.5), MetricInstance(name=LEVEL, value=2.0)])
            h.handle_metric([duration(10, code=500)])  # exactly on a bound: in that bucket (le)
            return scrape(h._exporter)
        finally:
            await close(h, env)

    assert run(main) == {
        'istio_requests_total{code="200",path="/a"}': 2.0,
        'istio_requests_total{code="404",path="/b"}': 3.0,
        "istio_queue_level": 2.0,
        'istio_request_duration_seconds_bucket{code="200",le="0.01"}': 1.0,
        'istio_request_duration_seconds_bucket{code="200",le="0.1"}': 2.0,
        'istio_request_duration_seconds_bucket{code="200",le="1.0"}': 2.0,
        'istio_request_duration_seconds_bucket{code="200",le="+Inf"}': 3.0,
        'istio_request_duration_seconds_count{code="200"}': 3.0,
        'istio_request_duration_seconds_sum{code="200"}': pytest.approx(2.05421),
        'istio_request_duration_seconds_bucket{code="500",le="0.01"}': 1.0,
        'istio_request_duration_seconds_bucket{code="500",le="0.1"}': 1.0,
        'istio_request_duration_seconds_bucket{code="500",le="1.0"}': 1.0,
        'istio_request_duration_seconds_bucket{code="500",le="+Inf"}': 1.0,
        'istio_request_duration_seconds_count{code="500"}': 1.0,
        'istio_request_duration_seconds_sum{code="500"}': 0.01,
    }


def test_exposition_text_has_help_type_and_no_created_series() -> None:
    async def main() -> str:
        env = make_env({"metrics": [COUNTER, GAUGE]})
        h = await build(env)
        try:
            h.handle_metric([count(), MetricInstance(name=LEVEL, value=1)])
            return generate_latest(h._exporter.registry).decode()
        finally:
            await close(h, env)

    assert run(main) == (
        "# HELP istio_queue_level items queued\n"
        "# TYPE istio_queue_level gauge\n"
        "istio_queue_level 1.0\n"
        "# HELP istio_requests_total \n"
        "# TYPE istio_requests_total counter\n"
        'istio_requests_total{code="200",path="/a"} 1.0\n'
    )


def test_linear_buckets_below_zero_still_export_count_and_sum() -> None:
    metric = {
        "name": "temperature",
        "instanceName": LEVEL,
        "kind": "DISTRIBUTION",
        "buckets": {"linearBuckets": {"numFiniteBuckets": 2, "width": 10, "offset": -10}},
    }

    async def main() -> dict[str, float]:
        env = make_env({"metrics": [metric]})
        h = await build(env)
        try:
            h.handle_metric(
                [MetricInstance(name=LEVEL, value=v) for v in (-15.0, -10.0, 3.0, 25.0, math.nan)]
            )
            return scrape(h._exporter)
        finally:
            await close(h, env)

    got = run(main)
    assert math.isnan(got.pop("istio_temperature_sum"))
    assert got == {
        'istio_temperature_bucket{le="-10.0"}': 2.0,
        'istio_temperature_bucket{le="0.0"}': 2.0,
        'istio_temperature_bucket{le="10.0"}': 3.0,
        'istio_temperature_bucket{le="+Inf"}': 5.0,
        "istio_temperature_count": 5.0,
    }


def test_default_buckets_and_exponential_buckets() -> None:
    metrics = [
        {"name": "d", "instanceName": DURATION, "kind": "DISTRIBUTION", "labelNames": ["code"]},
        {
            "name": "bytes",
            "instanceName": LEVEL,
            "kind": "DISTRIBUTION",
            "buckets": {"exponentialBuckets": {"numFiniteBuckets": 2, "growthFactor": 10, "scale": 1}},
        },
    ]

    async def main() -> dict[str, float]:
        env = make_env({"metrics": metrics})
        h = await build(env)
        try:
            h.handle_metric([duration(7), MetricInstance(name=LEVEL, value=5)])
            return scrape(h._exporter)
        finally:
            await close(h, env)

    got = run(main)
    les = [k.split('le="')[1].split('"')[0] for k in got if k.startswith("istio_d_bucket")]
    assert les == [
        "0.005",
        "0.01",
        "0.025",
        "0.05",
        "0.1",
        "0.25",
        "0.5",
        "1.0",
        "2.5",
        "5.0",
        "10.0",
        "+Inf",
    ]
    assert got['istio_d_bucket{code="200",le="0.005"}'] == 0.0
    assert got['istio_d_bucket{code="200",le="0.01"}'] == 1.0
    assert {k: v for k, v in got.items() if k.startswith("istio_bytes")} == {
        'istio_bytes_bucket{le="1.0"}': 0.0,
        'istio_bytes_bucket{le="10.0"}': 1.0,
        'istio_bytes_bucket{le="100.0"}': 1.0,
        'istio_bytes_bucket{le="+Inf"}': 1.0,
        "istio_bytes_count": 1.0,
        "istio_bytes_sum": 5.0,
    }


def test_label_values_follow_the_inferred_types() -> None:
    metric = {
        "name": "m",
        "instanceName": "m.instance.ns",
        "kind": "GAUGE",
        "labelNames": ["ip", "at", "took", "on", "tags", "ratio"],
    }
    info = InstanceInfo(
        "m.instance.ns",
        "metric",
        {
            "value": ValueType.STRING,
            "dimensions": {
                "ip": ValueType.IP_ADDRESS,
                "at": ValueType.TIMESTAMP,
                "took": ValueType.DURATION,
                "on": ValueType.BOOL,
                "tags": ValueType.STRING_MAP,
                "ratio": ValueType.DOUBLE,
            },
        },
    )
    dims = {
        "ip": ipaddress.ip_address("10.0.0.1").packed,
        "at": Timestamp.parse("2026-11-20T10:00:00Z"),
        "took": Duration(1_500_000_000),
        "on": True,
        "tags": {"z": "1", "a": "2"},
        "ratio": 0.5,
    }

    async def main() -> dict[str, float]:
        env = make_env({"metrics": [metric]}, instances={info.name: info})
        h = await build(env)
        try:
            h.handle_metric([MetricInstance(name=info.name, value="42", dimensions=dims)])
            return scrape(h._exporter)
        finally:
            await close(h, env)

    assert run(main) == {
        'istio_m{at="2026-11-20T10:00:00.000000Z",ip="10.0.0.1",on="true",ratio="0.5",'
        'tags="a=2&z=1",took="1.5s"}': 42.0
    }


def test_instances_that_cannot_be_recorded_are_skipped_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mixerd.adapter.prometheus")

    # the level's value is a BOOL here (say, `value: request.headers["x-q"] == "1"`)
    instances = {
        **INSTANCES,
        LEVEL: InstanceInfo(LEVEL, "metric", {"value": ValueType.BOOL, "dimensions": {}}),
    }

    async def main() -> tuple[dict[str, float], dict[str, int]]:
        env = make_env({"metrics": [COUNTER, GAUGE]}, instances=instances)
        h = await build(env)
        try:
            caplog.clear()
            h.handle_metric(
                [
                    count(value="many"),
                    count(value="lots"),
                    count(value=-1),
                    MetricInstance(name=COUNT, value=1, dimensions={"code": 200}),
                    MetricInstance(name=LEVEL, value=True),
                    MetricInstance(name="stray.instance.ns", value=1),
                    count(),
                ]
            )
            return scrape(h._exporter), dict(h.skipped)
        finally:
            await close(h, env)

    samples, skipped = run(main)
    assert samples == {'istio_requests_total{code="200",path="/a"}': 1.0}
    assert skipped == {COUNT: 4, LEVEL: 1, "stray.instance.ns": 1}
    prefix = f"{HANDLER}: skipped instance "
    suffix = " (logged once; later ones are only counted)"
    assert [(r.levelname, r.getMessage()) for r in caplog.records if "skipped" in r.getMessage()] == [
        ("WARNING", f"{prefix}{COUNT}: the string 'many' is not a number{suffix}"),
        ("WARNING", f"{prefix}{COUNT}: it has no dimension 'path'{suffix}"),
        ("WARNING", f"{prefix}{LEVEL}: a BOOL value (true) is not a number{suffix}"),
        ("INFO", f"{prefix}stray.instance.ns: no metric is configured for it{suffix}"),
    ]


def test_a_counter_going_down_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    metric = {"name": "c_total", "instanceName": LEVEL, "kind": "COUNTER"}

    async def main() -> dict[str, float]:
        env = make_env({"metrics": [metric]})
        h = await build(env)
        try:
            h.handle_metric([MetricInstance(name=LEVEL, value=v) for v in (2.0, -1.0, 0.5)])
            return scrape(h._exporter)
        finally:
            await close(h, env)

    assert run(main) == {"istio_c_total": 2.5}
    assert f"{HANDLER}: skipped instance {LEVEL}: a COUNTER cannot go down (value -1.0)" in caplog.text


def test_a_counter_name_without_total_gets_it_as_the_client_library_requires() -> None:
    metric = {"name": "hits", "instanceName": LEVEL, "kind": "COUNTER"}

    async def main() -> dict[str, float]:
        env = make_env({"metrics": [metric]})
        h = await build(env)
        try:
            h.handle_metric([MetricInstance(name=LEVEL, value=1)])
            return scrape(h._exporter)
        finally:
            await close(h, env)

    assert run(main) == {"istio_hits_total": 1.0}


# -- expiry -------------------------------------------------------------------------------------------


def test_series_not_updated_within_the_expiry_are_removed() -> None:
    clock = Clock()
    policy = {"metricsExpiryDuration": "10m", "expiryCheckIntervalDuration": "1m"}

    async def main() -> list[list[str]]:
        env = make_env({"metrics": [COUNTER], "metricsExpirationPolicy": policy}, clock=clock)
        h = await build(env)
        seen = []
        try:
            h.handle_metric([count(path="/old")])
            clock.now += 5 * 60 * SECOND
            h.handle_metric([count(path="/new"), count(path="/old")])  # /old updated again: its time restarts
            clock.now += 9 * 60 * SECOND
            h.handle_metric([count(path="/new")])
            assert h.expire() == 0  # /old: 9m ago, /new: just now
            seen.append(sorted(scrape(h._exporter)))
            clock.now += 60 * SECOND
            assert h.expire() == 1  # /old: 10m ago
            seen.append(sorted(scrape(h._exporter)))
            clock.now += 10 * 60 * SECOND
            assert h.expire() == 1
            seen.append(sorted(scrape(h._exporter)))
            h.handle_metric([count(path="/old")])  # comes back from zero
            seen.append([f"{k} {v}" for k, v in scrape(h._exporter).items()])
            return seen
        finally:
            await close(h, env)

    assert run(main) == [
        ['istio_requests_total{code="200",path="/new"}', 'istio_requests_total{code="200",path="/old"}'],
        ['istio_requests_total{code="200",path="/new"}'],
        [],
        ['istio_requests_total{code="200",path="/old"} 1.0'],
    ]


def test_expiry_runs_in_the_background_every_interval() -> None:
    clock = Clock()
    policy = {"metricsExpiryDuration": "10s", "expiryCheckIntervalDuration": "20ms"}

    async def main() -> None:
        env = make_env({"metrics": [COUNTER], "metricsExpirationPolicy": policy}, clock=clock)
        h = await build(env)
        try:
            h.handle_metric([count()])
            await asyncio.sleep(0.1)  # several checks: nothing is old enough by the injected clock
            assert len(scrape(h._exporter)) == 1
            clock.now += 10 * SECOND
            deadline = time.monotonic() + 2
            while scrape(h._exporter) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert scrape(h._exporter) == {}
        finally:
            await close(h, env)

    run(main)


def test_without_a_policy_nothing_expires() -> None:
    clock = Clock()

    async def main() -> int:
        env = make_env({"metrics": [COUNTER]}, clock=clock)
        h = await build(env)
        try:
            h.handle_metric([count()])
            clock.now += 365 * 86_400 * SECOND
            return h.expire() + len(scrape(h._exporter))
        finally:
            await close(h, env)

    assert run(main) == 1


# -- sharing and redefinition ---------------------------------------------------------------------------


def test_handlers_share_one_endpoint_and_unchanged_metrics_keep_their_series() -> None:
    async def main() -> None:
        env1 = make_env({"metrics": [COUNTER, HISTOGRAM, GAUGE]})
        old = await build(env1)
        old.handle_metric([count(), duration(50), MetricInstance(name=LEVEL, value=3)])
        exporter = shared.current()
        assert exporter is not None and old._exporter is exporter
        # the config changes: the histogram gets other buckets, the gauge another description
        changed = {**HISTOGRAM, "buckets": {"explicitBuckets": {"bounds": [0.5]}}}
        env2 = make_env({"metrics": [COUNTER, changed, {**GAUGE, "description": "queued items"}]})
        new = await build(env2)
        assert new._exporter is exporter  # one endpoint for the process
        assert scrape(exporter) == {'istio_requests_total{code="200",path="/a"}': 1.0}
        new.handle_metric([count(), duration(50)])
        old.handle_metric([count(), duration(50)])  # a request still on the old config: counter shared
        await close(old, env1)  # the old handler goes: what the new one uses stays
        assert scrape(exporter) == {
            'istio_requests_total{code="200",path="/a"}': 3.0,
            'istio_request_duration_seconds_bucket{code="200",le="0.5"}': 1.0,
            'istio_request_duration_seconds_bucket{code="200",le="+Inf"}': 1.0,
            'istio_request_duration_seconds_count{code="200"}': 1.0,
            'istio_request_duration_seconds_sum{code="200"}': 0.05,
        }
        assert shared.current() is exporter
        await close(new, env2)
        assert shared.current() is None

    run(main)


def test_a_metric_no_handler_defines_any_more_is_no_longer_exported() -> None:
    async def main() -> None:
        env1 = make_env({"metrics": [COUNTER, GAUGE]})
        old = await build(env1)
        old.handle_metric([count(), MetricInstance(name=LEVEL, value=3)])
        env2 = make_env({"metrics": [COUNTER]}, instances={COUNT: INSTANCES[COUNT]})
        new = await build(env2)
        exporter = new._exporter
        assert sorted(scrape(exporter)) == ["istio_queue_level", 'istio_requests_total{code="200",path="/a"}']
        await close(old, env1)
        assert sorted(scrape(exporter)) == ['istio_requests_total{code="200",path="/a"}']
        await close(new, env2)

    run(main)


def test_another_handler_redefining_a_metric_wins_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        env1 = make_env({"metrics": [COUNTER]})
        first = await build(env1)
        first.handle_metric([count()])
        env2 = Env(
            handler="other.handler.istio-system",
            adapter="prometheus",
            params=params({"metrics": [{**COUNTER, "labelNames": ["code"]}]}),
            instances={},
            settings=SETTINGS,
        )
        second = await build(env2)
        second.handle_metric([MetricInstance(name=COUNT, value=2, dimensions={"code": 500})])
        first.handle_metric([count()])  # goes to the replaced definition: not exported
        assert scrape(second._exporter) == {'istio_requests_total{code="500"}': 2.0}
        await close(first, env1)
        await close(second, env2)

    run(main)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "other.handler.istio-system: metric istio_requests_total is defined with other labels by "
        "prom.handler.istio-system; this definition replaces it (its series are dropped, and updates "
        "from the other definition are not exported)"
    ]


# -- the endpoint -------------------------------------------------------------------------------------


def test_the_endpoint_serves_metrics_over_http_and_nothing_else() -> None:
    async def main() -> None:
        env = make_env({"metrics": [COUNTER]})
        h = await build(env)
        try:
            h.handle_metric([count(), count()])
            exporter = shared.current()
            assert exporter is not None
            assert exporter.url == f"http://127.0.0.1:{exporter.port}/metrics"
            assert prometheus.current() is exporter

            def get(path: str) -> tuple[int, str]:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{exporter.port}{path}", timeout=5) as r:
                        return r.status, r.read().decode()
                except urllib.error.HTTPError as e:
                    return e.code, e.read().decode()

            status, text = await asyncio.to_thread(get, "/metrics")
            assert status == 200
            assert parse_metrics(text) == {'istio_requests_total{code="200",path="/a"}': 2.0}
            assert await asyncio.to_thread(get, "/") == (404, "not found; try /metrics\n")
        finally:
            await close(h, env)

    run(main)


def test_a_port_that_cannot_be_bound_fails_the_build() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        async def main() -> None:
            env = make_env(
                {"metrics": [COUNTER]}, settings=Settings(address="127.0.0.1", prometheus_port=port)
            )
            with pytest.raises(OSError) as e:
                await build(env)
            assert (
                str(e.value)
                == f"cannot listen for prometheus metrics on 127.0.0.1:{port}: Address already in use"
            )

        run(main)


def test_a_fixed_port_is_reused_after_the_last_handler_closed() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(address="127.0.0.1", prometheus_port=port)

    async def main() -> None:
        for _ in range(2):
            env = make_env({"metrics": [COUNTER]}, settings=settings)
            h = await build(env)
            exporter = shared.current()
            assert exporter is not None and exporter.port == port
            await close(h, env)

    run(main)


def test_the_default_env_settings_are_the_servers_defaults() -> None:
    env = Env(handler="h", adapter="prometheus", params=Params(), instances={})
    assert (env.settings.address, env.settings.prometheus_port) == ("0.0.0.0", 42422)


def test_the_reference_pages_example_loads(tmp_path: Path) -> None:
    """docs/adapters/prometheus.md: its handler and instance, with two more instances like it and a rule."""
    doc = (REPO / "docs" / "adapters" / "prometheus.md").read_text()
    handler, instance = re.findall(r"^```yaml\n(.*?)^```$", doc, flags=re.M | re.S)
    more = [
        instance.replace("name: requestcount", f"name: {name}").replace('value: "1"', f"value: {value}")
        for name, value in (
            ("requestduration", 'response.duration | "0ms"'),
            ("requestsize", "request.size | 0"),
        )
    ]
    rule = (
        "apiVersion: config.istio.io/v1alpha2\nkind: rule\nmetadata: {name: r, namespace: istio-system}\n"
        "spec: {actions: [{handler: prometheus, instances: [requestcount, requestduration, requestsize]}]}\n"
    )
    (tmp_path / "example.yaml").write_text("---\n".join([handler, instance, *more, rule]))
    snapshot = load_snapshot(tmp_path, load_adapters())
    p = snapshot.handlers["prometheus.handler.istio-system"].params
    assert [(m.name, m.kind) for m in p.metrics] == [
        ("requests_total", Kind.COUNTER),
        ("request_duration_seconds", Kind.DISTRIBUTION),
        ("request_bytes", Kind.DISTRIBUTION),
    ]
