"""Load shedding through a real server: a dispatcher that holds the event loop for 5 ms per call and a few
hundred calls at once (far more than 50 ms of work), so calls queue whatever the machine's speed."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mixerd.api.envoy.service.accesslog.v3 import als_pb2
from mixerd.api.envoy.service.auth.v3 import external_auth_pb2
from mixerd.api.mixer.v1 import mixer_pb2
from mixerd.attribute import AttributeBag
from mixerd.dispatch import ALLOW, CheckOutcome, QuotaRequest
from mixerd.server.admission import SHED_MESSAGE
from mixerd.testing_scenarios.server import parse_metrics

pytestmark = pytest.mark.integration

MIXER_CHECK = "/istio.mixer.v1.Mixer/Check"
AUTHZ_CHECK = "/envoy.service.auth.v3.Authorization/Check"
ACCESS_LOGS = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"
CALLS = 300  # per API; at 5 ms each, 1.5 s of work arriving at once
APIS = (
    "istio.mixer.v1.Mixer/Check",
    "istio.mixer.v1.Mixer/Report",
    "envoy.service.auth.v3.Authorization/Check",
    "envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit",
    "envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs",
)


class LoopHolding:
    """Allows every Check after holding the event loop's thread for `seconds` (as CPU-bound work would)."""

    def __init__(self, seconds: float = 0.005) -> None:
        self.seconds = seconds
        self.checks = 0
        self.reports = 0

    async def check(
        self, bag: AttributeBag, quotas: Any, dedup_id: str, timeout: float | None = None
    ) -> CheckOutcome:
        time.sleep(self.seconds)
        self.checks += 1
        return ALLOW

    async def report(self, bags: Sequence[AttributeBag]) -> None:
        self.reports += len(bags)


_ = QuotaRequest  # the Dispatcher protocol's quota type (unused: these Checks ask for none)


def metrics(server: Any) -> dict[str, float]:
    with urllib.request.urlopen(server.monitoring_url + "/metrics", timeout=10) as answer:
        return parse_metrics(answer.read().decode())


def shed_total(server: Any) -> dict[str, float]:
    found = metrics(server)
    return {api: found.get(f'mixerd_shed_requests_total{{api="{api}"}}', -1) for api in APIS}


def authz_request() -> bytes:
    request = external_auth_pb2.CheckRequest()
    request.attributes.request.http.path = "/"
    return request.SerializeToString()


MIXER_REQUEST = mixer_pb2.CheckRequest(global_word_count=222).SerializeToString()


def flood(channel: grpc.Channel) -> list[Any]:
    """CALLS Mixer Checks and CALLS ext_authz Checks, all sent at once; their futures."""
    mixer, authz = channel.unary_unary(MIXER_CHECK), channel.unary_unary(AUTHZ_CHECK)
    body = authz_request()
    futures = []
    for _ in range(CALLS):
        futures.append(mixer.future(MIXER_REQUEST, timeout=60))
        futures.append(authz.future(body, timeout=60))
    return futures


def outcomes(futures: Sequence[Any]) -> dict[tuple[str, str], int]:
    """(status, details) -> how many calls ended so."""
    counts: dict[tuple[str, str], int] = {}
    for future in futures:
        try:
            future.result()
            key = ("OK", "")
        except grpc.RpcError as e:
            key = (e.code().name, e.details() or "")
        counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.fixture
def channel_to() -> Iterator[Any]:
    channels: list[grpc.Channel] = []

    def open_channel(server: Any) -> grpc.Channel:
        channels.append(grpc.insecure_channel(server.address))
        return channels[-1]

    yield open_channel
    for channel in channels:
        channel.close()


def test_an_overloaded_server_sheds_with_unavailable_counts_it_and_keeps_answering_health(
    start_mixer_server: Any, channel_to: Any
) -> None:
    dispatcher = LoopHolding()
    server = start_mixer_server(dispatcher, shed_latency=0.05, authz_cache_size=0)  # every Check dispatched
    channel = channel_to(server)
    assert shed_total(server) == dict.fromkeys(APIS, 0)  # every API is behind the check

    # An access-log stream opened before the overload is never cut.
    logs: list[bytes] = [als_pb2.StreamAccessLogsMessage().SerializeToString()]
    gate = threading.Event()

    def stream_messages() -> Iterator[bytes]:
        yield logs[0]
        gate.wait(60)
        yield logs[0]

    stream = channel.stream_unary(ACCESS_LOGS).future(stream_messages(), timeout=60)

    futures = flood(channel)
    deadline = time.monotonic() + 30
    while shed_total(server)["istio.mixer.v1.Mixer/Check"] <= 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    gate.set()
    counts = outcomes(futures)
    assert stream.result() == b""

    shed = counts.get(("UNAVAILABLE", SHED_MESSAGE), 0)
    assert shed > 0 and counts.get(("OK", ""), 0) > 0
    assert set(counts) == {("OK", ""), ("UNAVAILABLE", SHED_MESSAGE)}
    totals = shed_total(server)
    assert totals["istio.mixer.v1.Mixer/Check"] + totals["envoy.service.auth.v3.Authorization/Check"] == shed
    # A shed call is never dispatched: the dispatcher saw exactly the admitted ones.
    assert dispatcher.checks == counts[("OK", "")]
    found = metrics(server)
    assert found['mixerd_check_requests_total{code="OK"}'] + shed >= CALLS


def test_with_shedding_off_every_call_waits_its_turn(start_mixer_server: Any, channel_to: Any) -> None:
    dispatcher = LoopHolding()
    server = start_mixer_server(dispatcher, shed_latency=0)
    counts = outcomes(flood(channel_to(server)))
    assert counts == {("OK", ""): 2 * CALLS}
    assert not any(name.startswith("mixerd_shed") for name in metrics(server))
