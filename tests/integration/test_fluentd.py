"""fluentd end to end: a real mixerd whose rules send logentry instances to the fluentd adapter, Reports
over gRPC, and a Fluentd forward-protocol server (npm `@fluent-org/logger`'s FluentServer, started on a
free port by tests/peers) printing every event it receives.

The fault test stops the server mid-run: Reports keep answering, events wait in the buffer and then
drop (counted), and when the server is back on its port the adapter reconnects and the buffered events
arrive.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from peers import receivers as peers

from mixerd.api.mixer.v1 import mixer_pb2_grpc
from mixerd.attribute import encode_report
from mixerd.attribute.values import Duration, Timestamp
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime
from mixerd.testing_scenarios import run_mixer
from mixerd_adapters.fluentd import handler as fluentd_handler
from mixerd_adapters.fluentd import mixerd_adapter_info

pytestmark = pytest.mark.integration

HANDLER = "fluentd.handler.istio-system"
ACCESS = "accesslog.instance.istio-system"
T0 = Timestamp.parse("2026-11-20T10:00:00.123456789Z")
MS = 1_000_000


@pytest.fixture
def fluentd() -> Iterator[Any]:
    with peers.FluentReceiver() as receiver:
        yield receiver


CONFIG = """\
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: fluentd, namespace: istio-system}
spec:
  compiledAdapter: fluentd
  params:
    address: ADDRESS
    integerDuration: INTEGER_DURATION
    instanceBufferSize: 10
    pushIntervalDuration: 20ms
    pushTimeoutDuration: 2s
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: accesslog, namespace: istio-system}
spec:
  compiledTemplate: logentry
  params:
    severity: conditional((response.code | 200) >= 500, "Error", "Info")
    timestamp: request.time
    variables:
      sourceIp: source.ip | ip("0.0.0.0")
      method: request.method | ""
      url: request.path | ""
      responseCode: response.code | 0
      latency: response.duration | "0ms"
      headers: request.headers
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: errors, namespace: istio-system}
spec:
  compiledTemplate: logentry
  params:
    severity: '"Error"'
    timestamp: request.time
    variables:
      tag: '"mesh.errors"'
      url: request.path | ""
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: all, namespace: istio-system}
spec:
  actions:
  - handler: fluentd
    instances: [accesslog]
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: errors, namespace: istio-system}
spec:
  match: (response.code | 200) >= 500
  actions:
  - handler: fluentd
    instances: [errors]
"""


def _runtime(folder: Path, address: str, integer_duration: bool = False) -> Runtime:
    folder.mkdir()
    text = CONFIG.replace("ADDRESS", address).replace("INTEGER_DURATION", str(integer_duration).lower())
    (folder / "fluentd.yaml").write_text(text)
    return Runtime({**load_adapters(), "fluentd": mixerd_adapter_info()}, folder=folder)


def _bag(path: str, code: int = 200, **more: Any) -> dict[str, Any]:
    return {
        "request.time": T0,
        "source.ip": bytes([10, 0, 0, 7]),
        "request.method": "GET",
        "request.path": path,
        "response.code": code,
        "response.duration": Duration(1_500 * MS),
        "request.headers": {"x-request-id": "r-1"},
        **more,
    }


def test_reported_requests_reach_fluentd_as_events(tmp_path: Path, fluentd: Any) -> None:
    runtime = _runtime(tmp_path / "config", fluentd.address)
    with run_mixer(runtime) as mixer, grpc.insecure_channel(mixer.address) as channel:
        stub = mixer_pb2_grpc.MixerStub(channel)
        stub.Report(encode_report([_bag("/a"), _bag("/b", 503)]), timeout=5)
        peers.wait_until(lambda: len(fluentd.events()) == 3, what="three events")
        stats = mixer.runtime.table.handlers[HANDLER].handler.delivery_stats()

    time_ = [T0.seconds, T0.nanos]
    access = {"sourceIp": "10.0.0.7", "method": "GET", "responseCode": 200, "latency": "1.5s"}
    assert sorted(fluentd.events(), key=lambda e: (e["tag"], e["record"]["url"])) == [
        {
            "tag": ACCESS,
            "time": time_,
            "record": {**access, "url": "/a", "headers": {"x-request-id": "r-1"}, "severity": "Info"},
        },
        {
            "tag": ACCESS,
            "time": time_,
            "record": {
                **access,
                "url": "/b",
                "responseCode": 503,
                "headers": {"x-request-id": "r-1"},
                "severity": "Error",
            },
        },
        {
            "tag": "mesh.errors",
            "time": time_,
            "record": {"url": "/b", "name": "errors.instance.istio-system", "severity": "Error"},
        },
    ]
    assert stats == {"queued": 3, "sent": 3, "dropped": 0, "failed": 0}


def test_integer_durations_are_whole_milliseconds(tmp_path: Path, fluentd: Any) -> None:
    runtime = _runtime(tmp_path / "config", fluentd.address, integer_duration=True)
    with run_mixer(runtime) as mixer, grpc.insecure_channel(mixer.address) as channel:
        stub = mixer_pb2_grpc.MixerStub(channel)
        stub.Report(encode_report([_bag("/a", **{"response.duration": Duration(2_999_999)})]), timeout=5)
        peers.wait_until(fluentd.events, what="the event")
    assert fluentd.events()[0]["record"]["latency"] == 2


def test_a_stopped_fluentd_never_slows_reports_and_delivery_resumes(
    tmp_path: Path, fluentd: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fluentd_handler, "RETRY_MAX_S", 0.2)
    runtime = _runtime(tmp_path / "config", fluentd.address)
    with run_mixer(runtime) as mixer, grpc.insecure_channel(mixer.address) as channel:
        stub = mixer_pb2_grpc.MixerStub(channel)
        handler = mixer.runtime.table.handlers[HANDLER].handler
        stub.Report(encode_report([_bag("/0")]), timeout=5)
        peers.wait_until(lambda: len(fluentd.events()) == 1, what="the first event")

        fluentd.stop()
        for i in range(1, 16):  # instanceBufferSize is 10: 10 wait, 5 are dropped
            started = time.monotonic()
            stub.Report(encode_report([_bag(f"/{i}")]), timeout=5)
            assert time.monotonic() - started < 1.0  # generous: a Report never waits on Fluentd
        peers.wait_until(lambda: handler.delivery_stats()["failed"] >= 2, what="failed pushes")
        stats = handler.delivery_stats()
        assert (stats["queued"], stats["sent"], stats["dropped"]) == (11, 1, 5)

        fluentd.start()  # same port: the adapter reconnects at its next retry
        peers.wait_until(lambda: len(fluentd.events()) == 11, what="the buffered events")
        stub.Report(encode_report([_bag("/16")]), timeout=5)  # and new ones go as usual
        peers.wait_until(lambda: len(fluentd.events()) == 12, what="the last event")
        peers.wait_until(lambda: handler.delivery_stats()["sent"] == 12, what="the last push")
        stats = handler.delivery_stats()

    urls = [e["record"]["url"] for e in fluentd.events()]
    assert urls == ["/0", *[f"/{i}" for i in range(1, 11)], "/16"]  # in order; /11 to /15 dropped
    assert (stats["queued"], stats["sent"], stats["dropped"]) == (12, 12, 5)
