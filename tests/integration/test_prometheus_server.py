"""A real Prometheus server scrapes mixerd's prometheus endpoint serving Istio's default telemetry config
(rules/istio, unchanged), and its HTTP API answers with Istio's series, labels and values (issue 5)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from peers import receivers as peers

from mixerd.api.mixer.v1 import mixer_pb2_grpc
from mixerd.attribute import encode_report
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime
from mixerd.testing import typical_http_bag
from mixerd.testing_scenarios.server import run_mixer
from mixerd_adapters import prometheus

pytestmark = pytest.mark.integration


def _value(result: list[dict[str, Any]]) -> float | None:
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_istios_series_from_mixerd(
    tmp_path: Path, bundled_rules: Callable[[str], Path]
) -> None:
    # The real kubernetesenv is built but unavailable outside a cluster: workloads read "unknown".
    with run_mixer(Runtime(load_adapters(), folder=bundled_rules("istio")), prometheus_port=0) as mixer:
        with grpc.insecure_channel(mixer.address) as channel:
            mixer_pb2_grpc.MixerStub(channel).Report(
                encode_report([typical_http_bag(1), typical_http_bag(2)])
            )
        endpoint = prometheus.current()
        assert endpoint is not None
        with peers.PrometheusServer(tmp_path, f"127.0.0.1:{endpoint.port}") as server:
            query = 'istio_requests_total{destination_service="reviews.default.svc.cluster.local"}'
            result = peers.wait_until(lambda: server.query(query), timeout=20, what="a scrape of mixerd")
            [series] = result
            labels = series["metric"]
            assert _value(result) == 2.0
            assert {k: labels[k] for k in ("job", "instance")} == {
                "job": "mixerd",
                "instance": f"127.0.0.1:{endpoint.port}",
            }
            assert {
                k: labels[k]
                for k in (
                    "reporter",
                    "source_principal",
                    "destination_service_name",
                    "request_protocol",
                    "response_code",
                    "response_flags",
                    "connection_security_policy",
                    "source_workload",
                    "destination_workload",
                )
            } == {
                "reporter": "destination",
                "source_principal": "cluster.local/ns/default/sa/bookinfo-productpage",
                "destination_service_name": "reviews",
                "request_protocol": "http",
                "response_code": "200",
                "response_flags": "-",
                "connection_security_policy": "mutual_tls",
                "source_workload": "unknown",
                "destination_workload": "unknown",
            }
            # The request duration histogram: both requests took 4.21 ms, so both are in the 0.005 bucket.
            assert _value(server.query("sum(istio_request_duration_seconds_count)")) == 2.0
            assert _value(server.query('sum(istio_request_duration_seconds_bucket{le="0.005"})')) == 2.0
            assert _value(server.query("sum(istio_request_bytes_count)")) == 2.0
            assert _value(server.query("up")) == 1.0
