"""statsd end to end: a real mixerd whose rules send metric instances to the statsd adapter, Reports over
gRPC, and the Etsy statsd daemon (npm `statsd`, started on a free port by tests/peers) receiving them.

The daemon shows both what it received (its repeater backend forwards every datagram to the test) and
what it understood (a JSON backend prints its counters, gauges and timers at each 100 ms flush). The
fault test stops the daemon mid-run: Reports keep answering, lines queue up and then drop (counted),
and when the daemon is back the queued lines arrive.
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
from mixerd.attribute.values import Duration
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime
from mixerd.testing_scenarios import run_mixer
from mixerd_adapters.statsd import handler as statsd_handler
from mixerd_adapters.statsd import mixerd_adapter_info

pytestmark = pytest.mark.integration

HANDLER = "statsd.handler.istio-system"
MS = 1_000_000


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Any]:
    with peers.StatsdDaemon(tmp_path) as d:
        yield d


CONFIG = """\
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: statsd, namespace: istio-system}
spec:
  compiledAdapter: statsd
  params:
    address: ADDRESS
    prefix: mesh
    flushDuration: 20ms
    metrics:
      requestcount.instance.istio-system:
        type: COUNTER
        nameTemplate: "requests.{{.method}}.{{.code}}"
      requestduration.instance.istio-system: {type: DISTRIBUTION, nameTemplate: "latency.{{.method}}"}
      requestsize.instance.istio-system: {type: DISTRIBUTION, nameTemplate: size}
      responsesize.instance.istio-system: {type: GAUGE, nameTemplate: last_response_size}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: requestcount, namespace: istio-system}
spec:
  compiledTemplate: metric
  params:
    value: "1"
    dimensions: {method: request.method | "", code: response.code | 200}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: requestduration, namespace: istio-system}
spec:
  compiledTemplate: metric
  params:
    value: response.duration | "0ms"
    dimensions: {method: request.method | ""}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: requestsize, namespace: istio-system}
spec:
  compiledTemplate: metric
  params: {value: request.size | 0}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: responsesize, namespace: istio-system}
spec:
  compiledTemplate: metric
  params: {value: response.size | 0}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: statsd, namespace: istio-system}
spec:
  actions:
  - handler: statsd
    instances: [requestcount, requestduration, requestsize, responsesize]
"""


def _runtime(folder: Path, address: str) -> Runtime:
    folder.mkdir()
    (folder / "statsd.yaml").write_text(CONFIG.replace("ADDRESS", address))
    return Runtime({**load_adapters(), "statsd": mixerd_adapter_info()}, folder=folder)


def _bag(method: str, code: int, duration_ms: int, size: int, response_size: int) -> dict[str, Any]:
    return {
        "request.method": method,
        "response.code": code,
        "response.duration": Duration(duration_ms * MS),
        "request.size": size,
        "response.size": response_size,
    }


def test_reported_requests_reach_the_statsd_daemon(tmp_path: Path, daemon: Any) -> None:
    runtime = _runtime(tmp_path / "config", daemon.address)
    with run_mixer(runtime) as mixer, grpc.insecure_channel(mixer.address) as channel:
        stub = mixer_pb2_grpc.MixerStub(channel)
        stub.Report(
            encode_report([_bag("GET", 200, 10, 100, 1000), _bag("GET", 200, 30, 200, 2000)]), timeout=5
        )
        stub.Report(encode_report([_bag("POST", 503, 5, 50, 10)]), timeout=5)
        peers.wait_until(lambda: daemon.counters().get("mesh.size") == 350, what="the daemon's counters")
        peers.wait_until(lambda: len(daemon.timers().get("mesh.latency.GET", [])) == 2, what="the timers")
        stats = mixer.runtime.table.handlers[HANDLER].handler.delivery_stats()

    assert daemon.counters() == {"mesh.requests.GET.200": 2, "mesh.requests.POST.503": 1, "mesh.size": 350}
    assert daemon.timers() == {"mesh.latency.GET": [10, 30], "mesh.latency.POST": [5]}
    assert daemon.gauges() == {"mesh.last_response_size": 10}
    assert sorted(daemon.lines()) == sorted(
        [
            "mesh.requests.GET.200:1|c",
            "mesh.requests.GET.200:1|c",
            "mesh.requests.POST.503:1|c",
            "mesh.latency.GET:10.000000|ms",
            "mesh.latency.GET:30.000000|ms",
            "mesh.latency.POST:5.000000|ms",
            "mesh.size:100|c",
            "mesh.size:200|c",
            "mesh.size:50|c",
            "mesh.last_response_size:1000|g",
            "mesh.last_response_size:2000|g",
            "mesh.last_response_size:10|g",
        ]
    )
    assert all(len(d) <= 512 for d in daemon.datagrams())  # flushBytes
    assert stats == {"queued": 12, "sent": 12, "dropped": 0, "failed": 0}


def test_a_stopped_daemon_never_slows_reports_and_delivery_resumes(
    tmp_path: Path, daemon: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statsd_handler, "MAX_QUEUED_LINES", 40)  # 10 bags' worth of lines
    monkeypatch.setattr(statsd_handler, "RETRY_MAX_S", 0.2)
    runtime = _runtime(tmp_path / "config", daemon.address)
    with run_mixer(runtime) as mixer, grpc.insecure_channel(mixer.address) as channel:
        stub = mixer_pb2_grpc.MixerStub(channel)
        handler = mixer.runtime.table.handlers[HANDLER].handler
        stub.Report(encode_report([_bag("GET", 200, 1, 1, 1)]), timeout=5)
        peers.wait_until(lambda: daemon.counters().get("mesh.requests.GET.200") == 1, what="the first report")

        daemon.stop()
        for _ in range(15):  # 60 lines: 40 wait in the queue, 20 are dropped
            started = time.monotonic()
            stub.Report(encode_report([_bag("GET", 200, 1, 1, 1)]), timeout=5)
            assert time.monotonic() - started < 1.0  # generous: a Report never waits on statsd
        peers.wait_until(lambda: handler.delivery_stats()["failed"] >= 2, what="failed sends")
        stats = handler.delivery_stats()
        assert (stats["queued"], stats["sent"], stats["dropped"]) == (44, 4, 20)

        daemon.start()  # same port: the queued lines go out at the next retry
        peers.wait_until(
            lambda: daemon.counters().get("mesh.requests.GET.200") == 11, what="the queued lines"
        )
        assert handler.delivery_stats()["sent"] == 44
        stub.Report(encode_report([_bag("GET", 200, 1, 1, 1)]), timeout=5)  # and new ones as usual
        peers.wait_until(lambda: daemon.counters().get("mesh.requests.GET.200") == 12, what="the last report")
        peers.wait_until(lambda: handler.delivery_stats()["sent"] == 48, what="the last send")
        stats = handler.delivery_stats()

    assert (stats["queued"], stats["sent"], stats["dropped"]) == (48, 48, 20)
    assert daemon.counters()["mesh.size"] == 12
