"""The prometheus adapter in a real mixerd: Reports over gRPC, the shared endpoint scraped over HTTP and
parsed with prometheus_client's parser, exact series, labels and values.

Also Istio 1.4's default telemetry config, unchanged, with a stub kubernetesenv adapter beside the real
ones (its handler generates nothing, so every `$out.*` binding takes its fallback): a typical inbound
HTTP request bag gives istio_requests_total, istio_request_duration_seconds, istio_request_bytes and
istio_response_bytes with every label Istio computes, and TCP connection bags the istio_tcp_* series.
The expected label values are worked out from the config's expressions, one by one, below.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from peers.receivers import wait_until
from prometheus_client.parser import text_string_to_metric_families

from mixerd.adapter import AdapterInfo, Env
from mixerd.api.mixer.v1 import mixer_pb2, mixer_pb2_grpc
from mixerd.attribute import GLOBAL_WORDS, encode_attributes, encode_report
from mixerd.attribute.values import Duration
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime
from mixerd.templates import KubernetesInstance
from mixerd.testing import typical_http_bag
from mixerd.testing_scenarios import run_mixer
from mixerd_adapters import prometheus

pytestmark = pytest.mark.integration

ISTIO = Path(__file__).resolve().parents[1] / "data" / "config" / "istio"
HEAD = "apiVersion: config.istio.io/v1alpha2\n"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape() -> Samples:
    """Every sample the shared endpoint serves, over HTTP: (name, labels) -> value."""
    exporter = prometheus.current()
    assert exporter is not None, "no prometheus endpoint is running"
    with urllib.request.urlopen(f"http://127.0.0.1:{exporter.port}/metrics", timeout=5) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return (name, frozenset(labels.items()))


def report(address: str, bags: list[dict[str, Any]]) -> None:
    with grpc.insecure_channel(address) as channel:
        mixer_pb2_grpc.MixerStub(channel).Report(encode_report(bags), timeout=10)


# -- a config of our own ----------------------------------------------------------------------------

CONFIG = f"""{HEAD}kind: instance
metadata: {{name: requestcount, namespace: istio-system}}
spec:
  compiledTemplate: metric
  params:
    value: "1"
    dimensions:
      code: response.code | 200
      method: request.method | "unknown"
---
{HEAD}kind: instance
metadata: {{name: latency, namespace: istio-system}}
spec:
  compiledTemplate: metric
  params:
    value: response.duration | "0ms"
    dimensions:
      code: response.code | 200
---
{HEAD}kind: instance
metadata: {{name: requestsize, namespace: istio-system}}
spec:
  compiledTemplate: metric
  params:
    value: request.total_size | 0
---
{HEAD}kind: instance
metadata: {{name: lastsize, namespace: istio-system}}
spec:
  compiledTemplate: metric
  params:
    value: request.total_size | 0
    dimensions:
      source: source.principal | "unknown"
---
{HEAD}kind: handler
metadata: {{name: prom, namespace: istio-system}}
spec:
  compiledAdapter: prometheus
  params:
    metrics:
    - name: requests_total
      instanceName: requestcount.instance.istio-system
      kind: COUNTER
      labelNames: [code, method]
    - name: request_duration_seconds
      instanceName: latency.instance.istio-system
      kind: DISTRIBUTION
      labelNames: [code]
      buckets: {{explicitBuckets: {{bounds: [0.001, 0.01, 0.1]}}}}
    - name: request_size_bytes
      instanceName: requestsize.instance.istio-system
      kind: DISTRIBUTION
      namespace: mesh
      buckets: {{linearBuckets: {{numFiniteBuckets: 2, width: 1000, offset: 0}}}}
    - name: last_request_size
      instanceName: lastsize.instance.istio-system
      kind: GAUGE
      description: size of the latest request
      labelNames: [source]
---
{HEAD}kind: rule
metadata: {{name: everything, namespace: istio-system}}
spec:
  actions:
  - handler: prom
    instances: [requestcount, latency, requestsize, lastsize]
"""


def _bags() -> list[dict[str, Any]]:
    ok = typical_http_bag(0)  # GET 200 in 4.21ms, 512 bytes
    also_ok = typical_http_bag(1)
    missing = {
        **typical_http_bag(2),
        "request.method": "POST",
        "response.code": 404,
        "response.duration": Duration(50_000_000),
        "request.total_size": 1500,
        "source.principal": "cluster.local/ns/default/sa/other",
    }
    return [ok, also_ok, missing]


@pytest.fixture
def config_folder(tmp_path: Path) -> Path:
    (tmp_path / "prom.yaml").write_text(CONFIG)
    return tmp_path


def test_reports_become_exact_series(config_folder: Path, start_mixer_server) -> None:
    server = start_mixer_server(config=str(config_folder), prometheus_port=0)
    report(server.address, _bags())
    report(server.address, [typical_http_bag(3)])
    product = "cluster.local/ns/default/sa/bookinfo-productpage"
    assert scrape() == {
        sample("istio_requests_total", code="200", method="GET"): 3.0,
        sample("istio_requests_total", code="404", method="POST"): 1.0,
        sample("istio_request_duration_seconds_bucket", code="200", le="0.001"): 0.0,
        sample("istio_request_duration_seconds_bucket", code="200", le="0.01"): 3.0,
        sample("istio_request_duration_seconds_bucket", code="200", le="0.1"): 3.0,
        sample("istio_request_duration_seconds_bucket", code="200", le="+Inf"): 3.0,
        sample("istio_request_duration_seconds_count", code="200"): 3.0,
        sample("istio_request_duration_seconds_sum", code="200"): pytest.approx(3 * 0.00421),
        sample("istio_request_duration_seconds_bucket", code="404", le="0.001"): 0.0,
        sample("istio_request_duration_seconds_bucket", code="404", le="0.01"): 0.0,
        sample("istio_request_duration_seconds_bucket", code="404", le="0.1"): 1.0,
        sample("istio_request_duration_seconds_bucket", code="404", le="+Inf"): 1.0,
        sample("istio_request_duration_seconds_count", code="404"): 1.0,
        sample("istio_request_duration_seconds_sum", code="404"): 0.05,
        sample("mesh_request_size_bytes_bucket", le="0.0"): 0.0,
        sample("mesh_request_size_bytes_bucket", le="1000.0"): 3.0,
        sample("mesh_request_size_bytes_bucket", le="2000.0"): 4.0,
        sample("mesh_request_size_bytes_bucket", le="+Inf"): 4.0,
        sample("mesh_request_size_bytes_count"): 4.0,
        sample("mesh_request_size_bytes_sum"): 3 * 512 + 1500.0,
        sample("istio_last_request_size", source=product): 512.0,
        sample("istio_last_request_size", source="cluster.local/ns/default/sa/other"): 1500.0,
    }


def test_a_reload_keeps_unchanged_metrics_and_redefines_changed_ones(config_folder: Path) -> None:
    runtime = Runtime(load_adapters(), folder=config_folder)
    with run_mixer(runtime, prometheus_port=0) as mixer:
        report(mixer.address, _bags())
        exporter = prometheus.current()
        assert exporter is not None
        # the histogram gets other buckets; the counter, the size histogram and the gauge stay as they are
        changed = CONFIG.replace("bounds: [0.001, 0.01, 0.1]", "bounds: [0.02]")
        (config_folder / "prom.yaml").write_text(changed)
        assert mixer.run(runtime.reload())
        assert runtime.stats.handler_builds == 2  # the prometheus handler was rebuilt
        before = scrape()
        assert not [key for key in before if key[0].startswith("istio_request_duration")]
        report(mixer.address, [typical_http_bag(5)])
        after = scrape()
        assert prometheus.current() is exporter  # the same endpoint throughout
    assert prometheus.current() is None  # the server stopped: so did the endpoint
    assert after[sample("istio_requests_total", code="200", method="GET")] == 3.0
    assert after[sample("istio_requests_total", code="404", method="POST")] == 1.0
    assert after[sample("mesh_request_size_bytes_count")] == 4.0
    assert {key: value for key, value in after.items() if key[0].startswith("istio_request_duration")} == {
        sample("istio_request_duration_seconds_bucket", code="200", le="0.02"): 1.0,
        sample("istio_request_duration_seconds_bucket", code="200", le="+Inf"): 1.0,
        sample("istio_request_duration_seconds_count", code="200"): 1.0,
        sample("istio_request_duration_seconds_sum", code="200"): 0.00421,
    }


def test_a_busy_port_makes_the_handler_unavailable_and_the_server_serves_on(
    config_folder: Path, start_mixer_server
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = start_mixer_server(
            config=str(config_folder), prometheus_port=port, handler_retry_interval=0.2
        )
        assert prometheus.current() is None
        # Reports still succeed (a telemetry backend that is missing is no fault of the proxy's); the
        # instances the unavailable handler would have had are counted.
        report(server.address, [typical_http_bag(), typical_http_bag(2)])
        report(server.address, [typical_http_bag(3)])
        with urllib.request.urlopen(server.monitoring_url + "/metrics", timeout=5) as answer:
            own = {
                (s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(answer.read().decode())
                for s in family.samples
            }
        unavailable = sample(
            "mixerd_adapter_dispatches_total",
            handler="prom.handler.istio-system",
            template="metric",
            outcome="unavailable",
        )
        assert own[unavailable] == 2  # one call per Report
        with grpc.insecure_channel(server.address) as channel:
            request = mixer_pb2.CheckRequest(
                attributes=encode_attributes(typical_http_bag(), len(GLOBAL_WORDS)),
                global_word_count=len(GLOBAL_WORDS),
            )
            answer = mixer_pb2_grpc.MixerStub(channel).Check(request, timeout=5)
        assert answer.precondition.status.code == 0
    # The port is free now: the retry builds the handler, with no config change, and it counts.
    wait_until(prometheus.current, timeout=30, what="the prometheus handler's retry")
    assert prometheus.current().port == port
    report(server.address, [typical_http_bag()])
    assert scrape()[sample("istio_requests_total", code="200", method="GET")] == 1
    assert server.running.runtime.stats.config_loads == 1  # the same config, not a reload


# -- Istio's default telemetry config ---------------------------------------------------------------


_FIVE_MINUTES = Duration(300 * 1_000_000_000)


@dataclass
class _KubeParams:
    kubeconfig_path: str = ""
    cache_refresh_duration: Duration = _FIVE_MINUTES
    cluster_registries_namespace: str = ""


class _NoKubernetes:
    """A kubernetesenv handler that knows no pods: every `$out.*` binding falls back to its default."""

    def handle_kubernetes(self, instance: KubernetesInstance) -> dict[str, Any]:
        return {}


def _with_stub_kubernetesenv() -> dict[str, AdapterInfo]:
    stub = AdapterInfo(
        "kubernetesenv", ("kubernetes",), _KubeParams, build=lambda env: _NoKubernetes(), description="stub"
    )
    return {**load_adapters(), "kubernetesenv": stub}


@pytest.fixture
def istio() -> Iterator[Any]:
    with run_mixer(Runtime(_with_stub_kubernetesenv(), folder=ISTIO), prometheus_port=0) as mixer:
        yield mixer


# What the instances' dimension expressions give for typical_http_bag(), with the stub generator:
HTTP_LABELS = {
    # conditional((context.reporter.kind | "inbound") == "outbound", "source", "destination"): inbound
    "reporter": "destination",
    # source.labels / destination.labels: the generator's `$out.*_labels | emptyStringMap()`, so
    # source.labels["app"] is missing and `| "unknown"` applies
    "source_app": "unknown",
    "source_version": "unknown",
    "destination_app": "unknown",
    "destination_version": "unknown",
    # source.principal / destination.principal: sent by the proxy
    "source_principal": "cluster.local/ns/default/sa/bookinfo-productpage",
    "destination_principal": "cluster.local/ns/default/sa/bookinfo-reviews",
    # *.workload.name / *.workload.namespace: generated, `$out.* | "unknown"`
    "source_workload": "unknown",
    "source_workload_namespace": "unknown",
    "destination_workload": "unknown",
    "destination_workload_namespace": "unknown",
    # destination.service.host | conditional(...): the host is sent
    "destination_service": "reviews.default.svc.cluster.local",
    "destination_service_name": "reviews",
    "destination_service_namespace": "default",
    # api.protocol | context.protocol | "unknown"
    "request_protocol": "http",
    # response.code | 200: an INT64, printed in decimal
    "response_code": "200",
    # context.proxy_error_code | "-"
    "response_flags": "-",
    # rbac.permissive.* | "none"
    "permissive_response_code": "none",
    "permissive_response_policyid": "none",
    # inbound, and connection.mtls is true
    "connection_security_policy": "mutual_tls",
}

# The same for an outbound report of a request that failed upstream (503, UH), without mTLS.
OUTBOUND_LABELS = {
    **HTTP_LABELS,
    "reporter": "source",
    "response_code": "503",
    "response_flags": "UH",
    "connection_security_policy": "unknown",  # outbound: Istio does not know
}

DURATION_BOUNDS = [
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
BYTES_BOUNDS = ["1.0", "10.0", "100.0", "1000.0", "10000.0", "100000.0", "1e+06", "1e+07", "1e+08", "+Inf"]


def _histogram(
    name: str, labels: dict[str, str], bounds: list[str], counts: list[int], total: float
) -> Samples:
    """The samples of one histogram series: cumulative `counts` per bound, its count and sum."""
    out: Samples = {}
    for le, n in zip(bounds, counts, strict=True):
        out[sample(f"{name}_bucket", **labels, le=le)] = float(n)
    out[sample(f"{name}_count", **labels)] = float(counts[-1])
    out[sample(f"{name}_sum", **labels)] = total
    return out


def test_istio_http_series_with_every_label(istio) -> None:
    outbound = {
        **typical_http_bag(9),
        "context.reporter.kind": "outbound",
        "response.code": 503,
        "context.proxy_error_code": "UH",
        "connection.mtls": False,
        "response.duration": Duration(30_000_000),
        "request.size": 20,
        "response.size": 95,
    }
    probe = {**typical_http_bag(10), "request.useragent": "kube-probe/1.15"}  # left out by promhttp's match
    report(istio.address, [typical_http_bag(0), typical_http_bag(1), outbound, probe])
    expected: Samples = {
        sample("istio_requests_total", **HTTP_LABELS): 2.0,
        sample("istio_requests_total", **OUTBOUND_LABELS): 1.0,
    }
    # response.duration 4.21ms: in the 0.005 bucket; 30ms: in the 0.05 bucket
    expected |= _histogram(
        "istio_request_duration_seconds", HTTP_LABELS, DURATION_BOUNDS, [2] * 12, pytest.approx(2 * 0.00421)
    )
    expected |= _histogram(
        "istio_request_duration_seconds", OUTBOUND_LABELS, DURATION_BOUNDS, [0, 0, 0, 1] + [1] * 8, 0.03
    )
    # request.size 0 (sent), response.size absent: `| 0`; both in the first bucket
    expected |= _histogram("istio_request_bytes", HTTP_LABELS, BYTES_BOUNDS, [2] * 10, 0.0)
    expected |= _histogram("istio_response_bytes", HTTP_LABELS, BYTES_BOUNDS, [2] * 10, 0.0)
    expected |= _histogram("istio_request_bytes", OUTBOUND_LABELS, BYTES_BOUNDS, [0, 0, 1] + [1] * 7, 20.0)
    expected |= _histogram("istio_response_bytes", OUTBOUND_LABELS, BYTES_BOUNDS, [0, 0, 1] + [1] * 7, 95.0)
    assert scrape() == expected


def _tcp_bag(event: str, sent: int, received: int) -> dict[str, Any]:
    """A TCP connection report from the server side's proxy (no mTLS)."""
    return {
        "source.uid": "kubernetes://ratings-v2-mysql-6b7d5c7f4-vk2fl.default",
        "source.ip": ipaddress.ip_address("10.44.0.21").packed,
        "source.principal": "cluster.local/ns/default/sa/bookinfo-ratings",
        "destination.uid": "kubernetes://mysqldb-v1-5f8d9c9b8-2w2jd.default",
        "destination.ip": ipaddress.ip_address("10.44.0.30").packed,
        "destination.port": 3306,
        "destination.service.host": "mysqldb.default.svc.cluster.local",
        "destination.service.name": "mysqldb",
        "destination.service.namespace": "default",
        "context.protocol": "tcp",
        "context.reporter.kind": "inbound",
        "connection.mtls": False,
        "connection.event": event,
        "connection.sent.bytes": sent,
        "connection.received.bytes": received,
    }


TCP_LABELS = {
    "reporter": "destination",
    "source_app": "unknown",
    "source_version": "unknown",
    "destination_app": "unknown",
    "destination_version": "unknown",
    "source_principal": "cluster.local/ns/default/sa/bookinfo-ratings",
    "destination_principal": "unknown",  # not sent: `destination.principal | "unknown"`
    "source_workload": "unknown",
    "source_workload_namespace": "unknown",
    "destination_workload": "unknown",
    "destination_workload_namespace": "unknown",
    "destination_service": "mysqldb.default.svc.cluster.local",
    "destination_service_name": "mysqldb",
    "destination_service_namespace": "default",
    "connection_security_policy": "none",  # inbound, connection.mtls false
    "response_flags": "-",
}


def test_istio_tcp_series_with_every_label(istio) -> None:
    report(istio.address, [_tcp_bag("open", 100, 50), _tcp_bag("continue", 1000, 500)])
    report(istio.address, [_tcp_bag("close", 20, 10)])
    assert scrape() == {
        sample("istio_tcp_sent_bytes_total", **TCP_LABELS): 1120.0,
        sample("istio_tcp_received_bytes_total", **TCP_LABELS): 560.0,
        sample("istio_tcp_connections_opened_total", **TCP_LABELS): 1.0,
        sample("istio_tcp_connections_closed_total", **TCP_LABELS): 1.0,
    }


def test_istio_config_expires_series_after_ten_minutes(istio) -> None:
    handler = istio.runtime.table.handlers["prometheus.handler.istio-system"].handler
    report(istio.address, [typical_http_bag(0)])
    assert handler.expire() == 0  # just updated (the runtime's real clock)
    assert len(scrape()) == 1 + 12 + 2 + 2 * (10 + 2)
    env: Env = istio.runtime.table.handlers["prometheus.handler.istio-system"].env
    assert env.params.metrics_expiration_policy.metrics_expiry_duration == 600 * 1_000_000_000
