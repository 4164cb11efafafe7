"""StreamAccessLogs into a real mixerd, seen in a prometheus scrape: over real gRPC with the generated stub
client, and from a real Envoy (tests/peers/envoy.py) in front of a tiny upstream.

The configs are docs/envoy/accesslog.md's rule example (its YAML blocks, as written) and Istio's default
telemetry config unchanged (rules/istio, with the real kubernetesenv, unavailable outside a cluster);
Envoy runs the doc's logger and cluster blocks.
"""

from __future__ import annotations

import copy
import queue
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import json_format, text_format
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from peers.envoy import AccessLog, EnvoyProxy, Upstream
from prometheus_client.parser import text_string_to_metric_families

from mixerd.api.envoy.config.core.v3 import base_pb2
from mixerd.api.envoy.data.accesslog.v3 import accesslog_pb2
from mixerd.api.envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime
from mixerd.testing_scenarios.server import parse_metrics, run_mixer
from mixerd_adapters import prometheus

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "envoy" / "accesslog.md"
DATA = REPO / "tests" / "data" / "envoy" / "accesslog"
METHOD = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"
Message = als_pb2.StreamAccessLogsMessage

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


# -- the doc's blocks ---------------------------------------------------------------------------------


def doc_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def doc_rules() -> str:
    """The doc's mixerd config: its YAML blocks that are config resources, as one file."""
    blocks = [b for b in doc_blocks("yaml") if b.startswith("apiVersion:")]
    assert len(blocks) == 1, "the doc has one mixerd config block"
    return blocks[0]


def doc_node() -> base_pb2.Node:
    [block] = [b for b in doc_blocks("yaml") if b.startswith("node:")]
    return json_format.ParseDict(yaml.safe_load(block)["node"], base_pb2.Node())


def doc_series() -> Samples:
    [block] = doc_blocks("text")
    return _samples(block)


# -- messages and calls ---------------------------------------------------------------------------------


def load(name: str, message: Any) -> Any:
    return text_format.Parse((DATA / name).read_text(), message)


def istio_identifier() -> Message.Identifier:
    return load("identifier.textproto", Message.Identifier())


def http_message(*entries: accesslog_pb2.HTTPAccessLogEntry, node: base_pb2.Node | None = None) -> Message:
    message = Message(http_logs=Message.HTTPAccessLogEntries(log_entry=entries))
    if node is not None:
        message.identifier.node.CopyFrom(node)
        message.identifier.log_name = "mixerd"
    return message


def entry(
    cluster: str, code: int, *, flags: dict[str, bool] | None = None
) -> accesslog_pb2.HTTPAccessLogEntry:
    """A plain HTTP entry as Envoy writes it for a request routed to `cluster` and answered `code`."""
    return json_format.ParseDict(
        {
            "common_properties": {
                "downstream_remote_address": {
                    "socket_address": {"address": "10.44.0.12", "port_value": 40000}
                },
                "downstream_local_address": {"socket_address": {"address": "10.44.0.17", "port_value": 9080}},
                "upstream_remote_address": {"socket_address": {"address": "127.0.0.1", "port_value": 9080}},
                "upstream_cluster": cluster,
                "start_time": "2026-11-20T10:00:00Z",
                "time_to_last_downstream_tx_byte": "0.004s",
                "response_flags": flags or {},
            },
            "protocol_version": "HTTP11",
            "request": {"request_method": "GET", "scheme": "http", "authority": "reviews:9080", "path": "/r"},
            "response": {"response_code": code, "response_headers_bytes": 100, "response_body_bytes": 5},
        },
        accesslog_pb2.HTTPAccessLogEntry(),
    )


REVIEWS_INBOUND = "inbound|9080|http|reviews.default.svc.cluster.local"


def stream(address: str, messages: Iterable[Message]) -> als_pb2.StreamAccessLogsResponse:
    with grpc.insecure_channel(address) as channel:
        return als_pb2_grpc.AccessLogServiceStub(channel).StreamAccessLogs(iter(messages), timeout=30)


def stream_raw(address: str, messages: Iterable[bytes]) -> bytes:
    """The same call with the bytes sent as they are (to send something that is not protobuf)."""
    with grpc.insecure_channel(address) as channel:
        return channel.stream_unary(METHOD)(iter(messages), timeout=30)


# -- scrapes ----------------------------------------------------------------------------------------------


def _samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(prefix: str = "istio_") -> Samples:
    """The prometheus endpoint's samples whose names start with `prefix`, over HTTP."""
    exporter = prometheus.current()
    assert exporter is not None, "no prometheus endpoint is running"
    with urllib.request.urlopen(f"http://127.0.0.1:{exporter.port}/metrics", timeout=5) as response:
        samples = _samples(response.read().decode())
    return {key: value for key, value in samples.items() if key[0].startswith(prefix)}


def self_metrics(monitoring_url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{monitoring_url}/metrics", timeout=5) as response:
        return parse_metrics(response.read().decode())


def als_metrics(monitoring_url: str) -> dict[str, float]:
    return {
        key.removeprefix("mixerd_envoy_accesslog_"): value
        for key, value in self_metrics(monitoring_url).items()
        if key.startswith("mixerd_envoy_accesslog_") and not key.endswith("_created")
    }


def sample(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return (name, frozenset(labels.items()))


@pytest.fixture
def doc_server(tmp_path: Path, start_mixer_server: Callable[..., Any]) -> Any:
    (tmp_path / "rules.yaml").write_text(doc_rules())
    return start_mixer_server(config=str(tmp_path), prometheus_port=0)


# -- the doc's example ------------------------------------------------------------------------------------


def test_the_docs_example_request_gives_the_docs_series(doc_server: Any) -> None:
    response = stream(doc_server.address, [http_message(entry(REVIEWS_INBOUND, 200), node=doc_node())])
    assert response == als_pb2.StreamAccessLogsResponse()
    assert scrape() == doc_series()


def test_entries_become_requests_total_series_across_messages(doc_server: Any) -> None:
    outbound = "outbound|9080||ratings.default.svc.cluster.local"
    messages = [
        http_message(entry(REVIEWS_INBOUND, 200), entry(REVIEWS_INBOUND, 200), node=doc_node()),
        http_message(entry(outbound, 503, flags={"no_healthy_upstream": True})),
        http_message(entry("backend", 404)),  # a plain cluster name: inbound, the service is its name
    ]
    stream(doc_server.address, messages)
    common = {"request_protocol": "http"}
    assert scrape() == {
        sample(
            "istio_requests_total",
            **common,
            reporter="destination",
            source_workload="unknown",
            destination_workload="reviews",
            destination_service="reviews.default.svc.cluster.local",
            response_code="200",
            response_flags="-",
            connection_security_policy="none",
        ): 2.0,
        sample(
            "istio_requests_total",
            **common,
            # outbound: the reporting proxy (reviews) is the source
            reporter="source",
            source_workload="reviews",
            destination_workload="unknown",
            destination_service="ratings.default.svc.cluster.local",
            response_code="503",
            response_flags="UH",
            connection_security_policy="unknown",
        ): 1.0,
        sample(
            "istio_requests_total",
            **common,
            reporter="destination",
            source_workload="unknown",
            destination_workload="reviews",
            destination_service="backend",
            response_code="404",
            response_flags="-",
            connection_security_policy="none",
        ): 1.0,
    }
    assert als_metrics(doc_server.monitoring_url) == {
        "streams_total": 1.0,
        "streams_open": 0.0,
        'entries_total{type="http"}': 4.0,
        'entries_total{type="tcp"}': 0.0,
        "bags_reported_total": 4.0,
        "entries_unmappable_total": 0.0,
        "messages_malformed_total": 0.0,
        "report_errors_total": 0.0,
    }


# -- Istio's own config -----------------------------------------------------------------------------------


@pytest.fixture
def istio(bundled_rules: Callable[[str], Path]) -> Iterator[Any]:
    with run_mixer(Runtime(load_adapters(), folder=bundled_rules("istio")), prometheus_port=0) as mixer:
        yield mixer


def test_istios_default_config_gives_istio_series_from_envoy_logs(istio: Any) -> None:
    identifier = istio_identifier()
    http = load("http_outbound.textproto", accesslog_pb2.HTTPAccessLogEntry())
    tcp = load("tcp_connection.textproto", Message.TCPAccessLogEntries())
    stream(
        istio.address,
        [Message(identifier=identifier, http_logs=Message.HTTPAccessLogEntries(log_entry=[http]))],
    )
    stream(istio.address, [Message(identifier=identifier, tcp_logs=tcp)])
    samples = scrape()

    source = {
        # from the stream identifier's node: this proxy is the source of outbound traffic
        "reporter": "source",
        "source_workload": "productpage",
        "source_workload_namespace": "default",
        "source_app": "productpage",
        "source_version": "v1",
        # kubernetesenv knows nothing outside a cluster
        "destination_workload": "unknown",
        "destination_workload_namespace": "unknown",
        "destination_app": "unknown",
        "destination_version": "unknown",
        "destination_principal": "unknown",
        "connection_security_policy": "unknown",  # outbound: Istio does not know
    }
    http_labels = {
        **source,
        "source_principal": "cluster.local/ns/default/sa/sleep",
        "destination_service": "reviews.default.svc.cluster.local",
        "destination_service_name": "reviews",
        "destination_service_namespace": "default",
        "request_protocol": "http",
        "response_code": "504",
        "response_flags": "UT,URX",
        "permissive_response_code": "none",
        "permissive_response_policyid": "none",
    }
    assert samples[sample("istio_requests_total", **http_labels)] == 1.0
    assert samples[sample("istio_request_duration_seconds_sum", **http_labels)] == pytest.approx(1.00421)
    assert samples[sample("istio_request_bytes_sum", **http_labels)] == 1024.0  # body bytes
    assert samples[sample("istio_response_bytes_sum", **http_labels)] == 24.0

    tcp_labels = {
        **source,
        "source_principal": "unknown",
        "destination_service": "mongodb.default.svc.cluster.local",
        "destination_service_name": "mongodb",
        "destination_service_namespace": "default",
        "response_flags": "-",
    }
    assert {key[0]: value for key, value in samples.items() if key[1] == frozenset(tcp_labels.items())} == {
        "istio_tcp_sent_bytes_total": 1500.0,  # 0 + 1200 + 300: each byte once over three entries
        "istio_tcp_received_bytes_total": 800.0,
        "istio_tcp_connections_opened_total": 1.0,
        "istio_tcp_connections_closed_total": 1.0,
    }
    assert als_metrics(istio.monitoring_url)['entries_total{type="tcp"}'] == 3.0


# -- what never ends a stream -----------------------------------------------------------------------------


def test_malformed_messages_and_unmappable_entries_are_counted_and_skipped(doc_server: Any) -> None:
    bad = entry(REVIEWS_INBOUND, 500)
    bad.common_properties.downstream_remote_address.socket_address.address = "not-an-ip"
    messages = [
        http_message(entry(REVIEWS_INBOUND, 200), node=doc_node()).SerializeToString(),
        b"\xff\xff\xff",  # not protobuf
        http_message(bad, entry(REVIEWS_INBOUND, 200)).SerializeToString(),
        http_message(entry(REVIEWS_INBOUND, 200)).SerializeToString(),
    ]
    assert stream_raw(doc_server.address, messages) == b""
    assert [value for (name, _), value in scrape().items()] == [3.0]  # the three good entries
    metrics = als_metrics(doc_server.monitoring_url)
    assert (metrics["messages_malformed_total"], metrics["entries_unmappable_total"]) == (1.0, 1.0)
    assert (metrics['entries_total{type="http"}'], metrics["bags_reported_total"]) == (4.0, 3.0)


#: A metric whose value cannot be evaluated for these entries (an attribute they lack, no fallback),
#: beside the doc's config: its instance fails in every Report the stream brings.
BROKEN_METRIC = """\
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: broken, namespace: istio-system}
spec:
  compiledTemplate: metric
  params: {value: request.api_key}
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: brokenprom, namespace: istio-system}
spec:
  compiledAdapter: prometheus
  params: {metrics: [{name: broken, instanceName: broken.instance.istio-system, kind: COUNTER}]}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: broken, namespace: istio-system}
spec:
  actions: [{handler: brokenprom, instances: [broken]}]
"""


def test_a_report_the_pipeline_fails_is_counted_and_the_stream_goes_on(
    tmp_path: Path, start_mixer_server: Callable[..., Any]
) -> None:
    (tmp_path / "rules.yaml").write_text(doc_rules())
    (tmp_path / "broken.yaml").write_text(BROKEN_METRIC)
    server = start_mixer_server(config=str(tmp_path), prometheus_port=0)
    messages = [http_message(entry(REVIEWS_INBOUND, 200), node=doc_node())]
    messages += [http_message(entry(REVIEWS_INBOUND, 200)) for _ in range(4)]
    assert stream(server.address, messages) == als_pb2.StreamAccessLogsResponse()
    metrics = als_metrics(server.monitoring_url)
    assert (metrics["report_errors_total"], metrics["bags_reported_total"]) == (5.0, 5.0)


SLOW_FLUENTD = """\
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {{name: fluentd, namespace: istio-system}}
spec:
  compiledAdapter: fluentd
  params: {{address: "127.0.0.1:{port}", instanceBufferSize: 10, pushIntervalDuration: 10ms,
           pushTimeoutDuration: 60s}}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {{name: accesslog, namespace: istio-system}}
spec:
  compiledTemplate: logentry
  params:
    severity: '"Info"'
    timestamp: request.time | timestamp("1970-01-01T00:00:00Z")
    variables: {{path: request.path | "", code: response.code | 0, body: '"{padding}"'}}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {{name: everything, namespace: istio-system}}
spec:
  actions:
  - {{handler: fluentd, instances: [accesslog]}}
"""


@contextmanager
def _never_reading_listener() -> Iterator[int]:
    """A TCP port that takes connections (the kernel's backlog) but never reads: a backend that hangs."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@contextmanager
def _closed_port() -> Iterator[int]:
    """A TCP port nothing listens on: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield port


@pytest.mark.parametrize("backend", [_never_reading_listener, _closed_port], ids=["hanging", "refusing"])
def test_a_slow_or_unreachable_backend_does_not_hold_the_stream(
    backend: Callable[[], Any], tmp_path: Path, start_mixer_server: Callable[..., Any]
) -> None:
    messages, per_message = 50, 40
    with backend() as port:
        (tmp_path / "rules.yaml").write_text(SLOW_FLUENTD.format(port=port, padding="x" * 2000))
        server = start_mixer_server(config=str(tmp_path), shutdown_grace=0.0)
        batch = [entry(REVIEWS_INBOUND, 200)] * per_message
        calls = [http_message(*batch, node=doc_node())] + [http_message(*batch) for _ in range(messages - 1)]
        # Every message is read and reported, and the call ends when the client closes: a Report that
        # waited on the backend would hold the stream until the client's deadline.
        assert stream(server.address, calls) == als_pb2.StreamAccessLogsResponse()
        metrics = self_metrics(server.monitoring_url)
        dropped = metrics[
            'mixerd_adapter_delivery_dropped_total{adapter="fluentd",handler="fluentd.handler.istio-system"}'
        ]
    als = {k.removeprefix("mixerd_envoy_accesslog_"): v for k, v in metrics.items()}
    total = float(messages * per_message)
    assert (als['entries_total{type="http"}'], als["bags_reported_total"], als["report_errors_total"]) == (
        total,
        total,
        0.0,
    )
    assert dropped > 0  # the backend really did not keep up: its queue (10 events) overflowed


# -- the stream's life ---------------------------------------------------------------------------------


@dataclass
class _OpenStream:
    answers: list[Any]  # the call's answer, once it has one
    caller: threading.Thread  # the thread making the call


@contextmanager
def _open_stream(server: Any) -> Iterator[_OpenStream]:
    """A StreamAccessLogs call kept open as Envoy keeps it: a thread sends one message of the doc's node
    and no more until the block ends, when it closes its side. The block starts once `server` has
    reported that message's bag (or after 20 s)."""
    outbox: queue.Queue[Message | None] = queue.Queue()

    def messages() -> Iterator[Message]:
        while (message := outbox.get()) is not None:
            yield message

    answers: list[Any] = []
    caller = threading.Thread(target=lambda: answers.append(stream(server.address, messages())))
    caller.start()
    try:
        outbox.put(http_message(entry(REVIEWS_INBOUND, 200), node=doc_node()))
        deadline = time.monotonic() + 20
        while als_metrics(server.monitoring_url)["bags_reported_total"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        yield _OpenStream(answers, caller)
    finally:
        outbox.put(None)
        caller.join(30)


def test_an_open_stream_is_counted_until_envoy_closes_it(doc_server: Any) -> None:
    with _open_stream(doc_server) as call:
        metrics = als_metrics(doc_server.monitoring_url)
        assert (metrics["streams_open"], metrics["bags_reported_total"]) == (1.0, 1.0)
        assert not call.answers  # no answer while Envoy keeps the stream open
    assert call.answers == [als_pb2.StreamAccessLogsResponse()]
    metrics = als_metrics(doc_server.monitoring_url)
    assert (metrics["streams_open"], metrics["streams_total"]) == (0.0, 1.0)


def test_stopping_the_server_ends_open_streams_with_the_empty_answer(
    tmp_path: Path, start_mixer_server: Callable[..., Any]
) -> None:
    """Envoy keeps its stream open for ever; a stopping mixerd ends it (OK, empty answer) at once rather
    than holding shutdown for the whole grace, so Envoy reconnects to another replica."""
    (tmp_path / "rules.yaml").write_text(doc_rules())
    server = start_mixer_server(config=str(tmp_path), prometheus_port=0, shutdown_grace=60.0)
    with _open_stream(server) as call:
        server.stop()  # with the 60 s grace: returns once the stream has ended
        call.caller.join(30)
        # The client never closed its side, yet its call ended with the service's answer.
        assert call.answers == [als_pb2.StreamAccessLogsResponse()]


def test_reflection_lists_the_access_log_service(mixer_server: Any) -> None:
    with grpc.insecure_channel(mixer_server.address) as channel:
        services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert "envoy.service.accesslog.v3.AccessLogService" in services


# -- a real Envoy -----------------------------------------------------------------------------------------

#: A second metric beside the doc's, over attributes that a logged header and the request line give.
BY_USER = """\
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: byuser, namespace: istio-system}
spec:
  compiledTemplate: metric
  params:
    value: "1"
    dimensions:
      user: request.headers["x-user"] | "none"
      method: request.method | "unknown"
      path: request.url_path | "unknown"
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: byuser, namespace: istio-system}
spec:
  compiledAdapter: prometheus
  params:
    metrics:
    - {name: requests_by_user_total, instanceName: byuser.instance.istio-system, kind: COUNTER,
       labelNames: [user, method, path]}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: byuser, namespace: istio-system}
spec:
  actions:
  - {handler: byuser, instances: [byuser]}
"""


def _doc_logger() -> dict[str, Any]:
    """The doc's http_grpc logger config, flushing every 50 ms (Envoy's 1 s default would slow the test)."""
    [block] = [b for b in doc_blocks("yaml") if b.startswith("access_log:")]
    [logger] = yaml.safe_load(block)["access_log"]
    config = copy.deepcopy(logger["typed_config"])
    config["common_config"]["buffer_flush_interval"] = "0.05s"
    return dict(config)


def _doc_cluster(address: str) -> dict[str, Any]:
    """The doc's mixerd cluster, pointing at `address`."""
    [block] = [b for b in doc_blocks("yaml") if b.startswith("- name: mixerd")]
    [cluster] = yaml.safe_load(block)
    host, _, port = address.rpartition(":")
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    endpoint["address"]["socket_address"] = {"address": host, "port_value": int(port)}
    return dict(cluster)


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_requests_through_a_real_envoy_become_series(
    tmp_path: Path, start_mixer_server: Callable[..., Any]
) -> None:
    """Envoy runs the doc's logger and mixerd cluster as written, in the harness's plain bootstrap (node
    `mixerd-test`, one cluster `upstream`)."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "requests.yaml").write_text(doc_rules())
    (rules / "byuser.yaml").write_text(BY_USER)
    mixer = start_mixer_server(config=str(rules), prometheus_port=0)

    with Upstream() as upstream:
        logger = AccessLog(mixer.address, extra=_doc_logger())
        proxy = EnvoyProxy(tmp_path / "envoy", upstream, access_log=logger)
        clusters = proxy.config["static_resources"]["clusters"]
        [at] = [i for i, c in enumerate(clusters) if c["name"] == "mixerd"]
        clusters[at] = _doc_cluster(mixer.address)
        with proxy:
            for n in range(3):
                assert proxy.get(f"/reviews/{n % 2}?page={n}", headers={"x-user": "jason"}).status == 200
            grpc_like = {"content-type": "application/grpc", "x-user": "ann"}
            assert proxy.request("POST", "/reviews.Reviews/Get", headers=grpc_like, body=b"hi").status == 200

            def logged() -> float:
                return sum(v for (name, _), v in scrape().items() if name == "istio_requests_total")

            _wait_for(lambda: logged() >= 4, "the four requests in istio_requests_total")
            samples = scrape()
            assert als_metrics(mixer.monitoring_url)["streams_open"] == 1.0  # Envoy keeps it open
        assert len(upstream.received()) == 4

    plain = {
        "reporter": "destination",  # a plain cluster name: Envoy reports as the destination side
        "source_workload": "unknown",
        "destination_workload": "mixerd-test",  # the node's cluster
        "destination_service": "upstream",  # the cluster name as it is
        "response_code": "200",
        "response_flags": "-",
        "connection_security_policy": "none",
    }
    assert samples == {
        sample("istio_requests_total", **plain, request_protocol="http"): 3.0,
        sample("istio_requests_total", **plain, request_protocol="grpc"): 1.0,
        sample("istio_requests_by_user_total", user="jason", method="GET", path="/reviews/0"): 2.0,
        sample("istio_requests_by_user_total", user="jason", method="GET", path="/reviews/1"): 1.0,
        sample("istio_requests_by_user_total", user="ann", method="POST", path="/reviews.Reviews/Get"): 1.0,
    }
