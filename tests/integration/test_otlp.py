"""otlp and zipkin end to end: a real mixerd whose rules send tracespan instances to an otlp handler and a
zipkin handler, Reports over gRPC, and OTLP/gRPC receivers (tests/peers/otlp_receiver.py: the official
TraceService of opentelemetry-proto, on free ports) recording the spans.

The fault test stops the receiver mid-run: Reports keep answering, spans queue up and then drop
(counted), and when the receiver is back on its port the queued spans arrive.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from peers import otlp_receiver as peer
from peers import receivers as peers  # for wait_until

from mixerd.api.mixer.v1 import mixer_pb2_grpc
from mixerd.attribute import encode_report
from mixerd.attribute.values import Timestamp
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime
from mixerd.testing_scenarios import run_mixer
from mixerd_adapters.otlp import handler as otlp_handler
from mixerd_adapters.otlp import mixerd_adapter_info

pytestmark = pytest.mark.integration

OTLP = "otlp.handler.istio-system"
ZIPKIN = "zipkin.handler.istio-system"
TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "00f067aa0ba902b7"
SERVER_SPAN = "b7ad6b7169203331"
CLIENT_SPAN = "53995c3f42cd8ad8"
T0 = Timestamp.parse("2026-11-20T10:00:00.123456789Z")
MS = 1_000_000
FRONTEND_IP = bytes([10, 0, 0, 1])
ORDERS_IP = bytes([10, 0, 0, 2])


@pytest.fixture
def receiver() -> Iterator[Any]:
    with peer.OtlpReceiver() as r:
        yield r


@pytest.fixture
def zipkin_receiver() -> Iterator[Any]:
    with peer.OtlpReceiver() as r:
        yield r


CONFIG = """\
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: otlp, namespace: istio-system}
spec:
  compiledAdapter: otlp
  params:
    endpoint: OTLP_ADDRESS
    headers: {Authorization: Bearer mesh-token}
    queueCapacity: 5
    batchSize: 5
    flushInterval: 20ms
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: zipkin, namespace: istio-system}
spec:
  compiledAdapter: zipkin
  params: {url: "http://ZIPKIN_ADDRESS/api/v2/spans"}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: spans, namespace: istio-system}
spec:
  compiledTemplate: tracespan
  params:
    traceId: request.headers["x-b3-traceid"] | ""
    spanId: request.headers["x-b3-spanid"] | ""
    parentSpanId: request.headers["x-b3-parentspanid"] | ""
    spanName: request.path | "/"
    startTime: request.time
    endTime: response.time
    clientSpan: (context.reporter.kind | "inbound") == "outbound"
    rewriteClientSpanId: "false"
    httpStatusCode: response.code | 0
    sourceName: source.workload.name | ""
    sourceIp: source.ip | ip("0.0.0.0")
    destinationName: destination.workload.name | ""
    destinationIp: destination.ip | ip("0.0.0.0")
    requestSize: request.size | 0
    responseSize: response.size | 0
    apiProtocol: api.protocol | ""
    spanTags:
      http.method: request.method | ""
      latency: response.duration | "0ms"
      retried: (request.headers["x-retry"] | "") == "yes"
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: tracing, namespace: istio-system}
spec:
  actions:
  - handler: otlp
    instances: [spans]
  - handler: zipkin
    instances: [spans]
"""


def _runtime(folder: Path, otlp: str, zipkin: str) -> Runtime:
    folder.mkdir()
    text = CONFIG.replace("OTLP_ADDRESS", otlp).replace("ZIPKIN_ADDRESS", zipkin)
    (folder / "tracing.yaml").write_text(text)
    adapters = {**load_adapters(), **{info.name: info for info in mixerd_adapter_info()}}
    return Runtime(adapters, folder=folder)


def _bag(span_id: str, *, outbound: bool = False, code: int = 200, traced: bool = True) -> dict[str, Any]:
    headers = {"x-b3-traceid": TRACE, "x-b3-spanid": span_id, "x-b3-parentspanid": PARENT} if traced else {}
    return {
        "request.headers": headers,
        "request.path": "/orders",
        "request.method": "POST",
        "request.time": T0,
        "response.time": Timestamp(T0 + 25 * MS),
        "response.code": code,
        "context.reporter.kind": "outbound" if outbound else "inbound",
        "source.workload.name": "frontend",
        "source.ip": FRONTEND_IP,
        "destination.workload.name": "orders",
        "destination.ip": ORDERS_IP,
        "request.size": 120,
        "api.protocol": "http",
    }


def _view(received: Any) -> dict[str, Any]:
    s = received.span
    return {
        "service": received.resource["service.name"],
        "ids": (s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex()),
        "name": s.name,
        "kind": Span.SpanKind.Name(s.kind),
        "times": (s.start_time_unix_nano, s.end_time_unix_nano),
        "status": Status.StatusCode.Name(s.status.code),
        "attributes": received.attributes,
    }


def _attributes(code: int) -> dict[str, Any]:
    return {
        "http.response.status_code": code,
        "source.name": "frontend",
        "source.address": "10.0.0.1",
        "destination.name": "orders",
        "destination.address": "10.0.0.2",
        "http.request.body.size": 120,
        "http.response.body.size": 0,  # set by the instance (response.size | 0), so sent
        "api.protocol": "http",
        "http.method": "POST",
        "latency": "0s",
        "retried": False,
    }


def test_reported_requests_reach_the_receivers_as_spans(
    tmp_path: Path, receiver: Any, zipkin_receiver: Any
) -> None:
    runtime = _runtime(tmp_path / "config", receiver.address, zipkin_receiver.address)
    with run_mixer(runtime) as mixer, grpc.insecure_channel(mixer.address) as channel:
        stub = mixer_pb2_grpc.MixerStub(channel)
        stub.Report(encode_report([_bag(SERVER_SPAN), _bag("", traced=False)]), timeout=5)
        stub.Report(encode_report([_bag(CLIENT_SPAN, outbound=True, code=503)]), timeout=5)
        peers.wait_until(lambda: len(receiver.spans()) == 2, what="the spans")
        handler = mixer.runtime.table.handlers[OTLP].handler
        peers.wait_until(lambda: handler.delivery_stats()["sent"] == 2, what="the sent count")
        stats = handler.delivery_stats()
        counts = handler.span_counts()
        sent_metric = mixer.metric(f'mixerd_adapter_delivery_sent_total{{adapter="otlp",handler="{OTLP}"}}')
    # the zipkin handler exports every 5 s (the default), and at close: when the server stopped
    peers.wait_until(lambda: len(zipkin_receiver.spans()) == 2, what="the zipkin handler's spans")

    server = {
        "service": "orders",
        "ids": (TRACE, SERVER_SPAN, PARENT),
        "name": "/orders",
        "kind": "SPAN_KIND_SERVER",
        "times": (T0, T0 + 25 * MS),
        "status": "STATUS_CODE_UNSET",
        "attributes": _attributes(200),
    }
    client = {
        **server,
        "service": "frontend",
        "ids": (TRACE, CLIENT_SPAN, PARENT),
        "kind": "SPAN_KIND_CLIENT",
        "status": "STATUS_CODE_ERROR",
        "attributes": _attributes(503),
    }
    assert [_view(r) for r in receiver.spans()] == [server, client]
    assert {r.scope for r in receiver.spans()} == {("mixerd", "0.1.0")}
    assert [m["authorization"] for m in receiver.metadata()] == ["Bearer mesh-token"] * len(
        receiver.requests()
    )
    assert [_view(r) for r in zipkin_receiver.spans()] == [server, client]
    assert stats == {"queued": 2, "sent": 2, "dropped": 0, "failed": 0}
    assert counts == {"untraced": 1, "sampled_out": 0, "invalid": 0}
    assert sent_metric == 2


def test_a_stopped_receiver_never_slows_reports_and_delivery_resumes(
    tmp_path: Path, receiver: Any, zipkin_receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(otlp_handler, "RETRY_INITIAL_S", 0.05)
    monkeypatch.setattr(otlp_handler, "RETRY_MAX_S", 0.2)
    runtime = _runtime(tmp_path / "config", receiver.address, zipkin_receiver.address)
    with run_mixer(runtime) as mixer, grpc.insecure_channel(mixer.address) as channel:
        stub = mixer_pb2_grpc.MixerStub(channel)
        handler = mixer.runtime.table.handlers[OTLP].handler
        stub.Report(encode_report([_bag(f"{1:016x}")]), timeout=5)
        peers.wait_until(lambda: len(receiver.spans()) == 1, what="the first span")

        receiver.stop()
        for i in range(2, 10):  # 8 spans: 5 wait in the queue, 3 are dropped
            started = time.monotonic()
            stub.Report(encode_report([_bag(f"{i:016x}")]), timeout=5)
            assert time.monotonic() - started < 1.0  # generous: a Report never waits on the receiver
        peers.wait_until(lambda: handler.delivery_stats()["failed"] >= 2, what="failed exports")
        stats = handler.delivery_stats()
        assert (stats["queued"], stats["sent"], stats["dropped"]) == (6, 1, 3)

        receiver.start()  # same port: the queued spans go out at the next retry
        peers.wait_until(lambda: len(receiver.spans()) == 6, what="the queued spans", timeout=30)
        stub.Report(encode_report([_bag(f"{10:016x}")]), timeout=5)  # and new ones as usual
        peers.wait_until(lambda: len(receiver.spans()) == 7, what="the last span", timeout=30)
        peers.wait_until(lambda: handler.delivery_stats()["sent"] == 7, what="the last export", timeout=30)
        stats = handler.delivery_stats()
        dropped_metric = mixer.metric(
            f'mixerd_adapter_delivery_dropped_total{{adapter="otlp",handler="{OTLP}"}}'
        )

    assert [int(r.span.span_id.hex(), 16) for r in receiver.spans()] == [1, 2, 3, 4, 5, 6, 10]
    assert (stats["queued"], stats["sent"], stats["dropped"]) == (7, 7, 3)
    assert dropped_metric == 3
    peers.wait_until(lambda: len(zipkin_receiver.spans()) == 10, what="the zipkin spans (exported at close)")
