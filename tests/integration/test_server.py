"""The Mixer gRPC server over real connections: answers, error statuses, health, reflection,
monitoring HTTP and shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

import mixerd
from mixerd import cli
from mixerd.api.mixer.v1 import attributes_pb2, mixer_pb2, mixer_pb2_grpc
from mixerd.attribute import (
    GLOBAL_WORDS,
    AttributeBag,
    Condition,
    Reference,
    decode_references,
    encode_attributes,
    encode_report,
)
from mixerd.dispatch import CheckOutcome, QuotaOutcome, SimpleDispatcher
from mixerd.server.app import READY_PATTERN, ConfigError, StartError, served_services, start
from mixerd.settings import Settings
from mixerd.testing import typical_http_bag

pytestmark = pytest.mark.integration

CHECK = "/istio.mixer.v1.Mixer/Check"
REPORT = "/istio.mixer.v1.Mixer/Report"
MIXER = "istio.mixer.v1.Mixer"
ENVOY_SERVICES = (
    "envoy.service.auth.v3.Authorization",
    "envoy.service.ratelimit.v3.RateLimitService",
    "envoy.service.accesslog.v3.AccessLogService",
)


@pytest.fixture
def channel(mixer_server: Any) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(mixer_server.address) as ch:
        yield ch


def stub(ch: grpc.Channel) -> mixer_pb2_grpc.MixerStub:
    return mixer_pb2_grpc.MixerStub(ch)


def check_request(values: dict[str, Any] | None = None, **fields: Any) -> mixer_pb2.CheckRequest:
    bag = typical_http_bag() if values is None else values
    return mixer_pb2.CheckRequest(
        attributes=encode_attributes(bag), global_word_count=len(GLOBAL_WORDS), **fields
    )


def rpc_error(call: Any, *args: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=10)
    return info.value


class RecordingDispatcher(SimpleDispatcher):
    """No-rules answers, but remembers every call and can read attributes or answer differently."""

    def __init__(self, check_outcome: CheckOutcome | None = None, reads: Sequence[str] = ()) -> None:
        self.check_outcome = check_outcome
        self.reads = reads
        self.quota_calls: list[tuple[str, int, bool, str]] = []
        self.reports: list[list[dict[str, Any]]] = []

    async def precondition(self, bag: AttributeBag) -> CheckOutcome:
        for name in self.reads:
            attribute, _, key = name.partition("/")
            bag.map_get(attribute, key) if key else bag.get(attribute)
        return self.check_outcome or await super().precondition(bag)

    async def quota(
        self, bag: AttributeBag, name: str, amount: int, best_effort: bool, dedup_id: str
    ) -> QuotaOutcome:
        self.quota_calls.append((name, amount, best_effort, dedup_id))
        if name == "scarce":
            return QuotaOutcome(granted_amount=0, status_code=8, message="no more")
        return await super().quota(bag, name, amount, best_effort, dedup_id)

    async def report(self, bags: Sequence[AttributeBag]) -> None:
        self.reports.append([b.as_dict() for b in bags])


class FailingDispatcher(SimpleDispatcher):
    async def precondition(self, bag: AttributeBag) -> CheckOutcome:
        raise RuntimeError("adapter exploded")

    async def report(self, bags: Sequence[AttributeBag]) -> None:
        raise RuntimeError("sink exploded")


# -- Check -----------------------------------------------------------------------------------------


def test_check_without_rules_allows_with_cacheable_fields(channel: grpc.Channel) -> None:
    response = stub(channel).Check(check_request(), timeout=10)
    pre = response.precondition
    # Every field is written, even when empty: a proxy caches forever without valid_duration.
    assert pre.HasField("status") and pre.HasField("valid_duration") and pre.HasField("referenced_attributes")
    assert pre.status.code == 0
    assert (pre.valid_duration.seconds, pre.valid_duration.nanos) == (60, 0)
    assert pre.valid_use_count == 10000
    assert list(pre.referenced_attributes.attribute_matches) == []
    assert len(response.quotas) == 0


def test_check_accepts_an_empty_request(channel: grpc.Channel) -> None:
    response = stub(channel).Check(mixer_pb2.CheckRequest(), timeout=10)
    assert response.precondition.HasField("valid_duration")
    assert response.precondition.valid_use_count == 10000


def test_check_grants_every_requested_quota_in_full(channel: grpc.Channel) -> None:
    quotas = {
        "requestcount": mixer_pb2.CheckRequest.QuotaParams(amount=5),
        "bytes": mixer_pb2.CheckRequest.QuotaParams(amount=1024, best_effort=True),
    }
    response = stub(channel).Check(check_request(quotas=quotas, deduplication_id="id-1"), timeout=10)
    assert set(response.quotas) == {"requestcount", "bytes"}
    for name, params in quotas.items():
        result = response.quotas[name]
        assert result.granted_amount == params.amount
        assert result.valid_duration.seconds == 60
        assert result.HasField("status") and result.status.code == 0


def test_check_hands_quota_params_and_dedup_id_to_the_dispatcher(start_mixer_server: Any) -> None:
    dispatcher = RecordingDispatcher()
    server = start_mixer_server(dispatcher)
    quotas = {
        "requestcount": mixer_pb2.CheckRequest.QuotaParams(amount=2),
        "scarce": mixer_pb2.CheckRequest.QuotaParams(amount=7, best_effort=True),
    }
    with grpc.insecure_channel(server.address) as ch:
        response = stub(ch).Check(check_request(quotas=quotas, deduplication_id="abc"), timeout=10)
    assert sorted(dispatcher.quota_calls) == [
        ("requestcount", 2, False, "abcrequestcount"),
        ("scarce", 7, True, "abcscarce"),
    ]
    scarce = response.quotas["scarce"]
    assert (scarce.granted_amount, scarce.status.code, scarce.status.message) == (0, 8, "no more")


def test_check_returns_the_attributes_the_dispatcher_read(start_mixer_server: Any) -> None:
    reads = ("request.path", "request.headers/x-user", "request.headers/x-missing", "source.user")
    server = start_mixer_server(RecordingDispatcher(reads=reads))
    with grpc.insecure_channel(server.address) as ch:
        response = stub(ch).Check(check_request(), timeout=10)
    refs = decode_references(response.precondition.referenced_attributes, lambda n: n == "request.headers")
    assert refs == [
        Reference("request.path", Condition.EXACT),
        Reference("request.headers", Condition.EXACT, "x-user"),
        Reference("request.headers", Condition.ABSENCE, "x-missing"),
        Reference("source.user", Condition.ABSENCE),
    ]


def test_a_denied_check_carries_the_status_and_skips_quotas(start_mixer_server: Any) -> None:
    denied = CheckOutcome(status_code=7, message="h1.denier:not allowed", valid_use_count=3)
    dispatcher = RecordingDispatcher(check_outcome=denied)
    server = start_mixer_server(dispatcher)
    request = check_request(quotas={"requestcount": mixer_pb2.CheckRequest.QuotaParams(amount=1)})
    with grpc.insecure_channel(server.address) as ch:
        response = stub(ch).Check(request, timeout=10)
    pre = response.precondition
    assert (pre.status.code, pre.status.message, pre.valid_use_count) == (7, "h1.denier:not allowed", 3)
    assert pre.valid_duration.seconds == 60
    assert len(response.quotas) == 0 and dispatcher.quota_calls == []


# -- Report ----------------------------------------------------------------------------------------


def test_report_hands_every_bag_to_the_dispatcher(start_mixer_server: Any) -> None:
    dispatcher = RecordingDispatcher()
    server = start_mixer_server(dispatcher)
    bags = [typical_http_bag(n) for n in range(5)]
    with grpc.insecure_channel(server.address) as ch:
        assert stub(ch).Report(encode_report(bags), timeout=10) == mixer_pb2.ReportResponse()
    assert dispatcher.reports == [bags]
    assert server.stats.report_bags == 5


def test_report_applies_delta_encoding(start_mixer_server: Any) -> None:
    dispatcher = RecordingDispatcher()
    server = start_mixer_server(dispatcher)
    bags = [typical_http_bag(0), {**typical_http_bag(0), "response.code": 503}]
    request = encode_report(bags, delta=True)
    assert len(request.attributes[1].int64s) == 1  # only the change travels
    with grpc.insecure_channel(server.address) as ch:
        stub(ch).Report(request, timeout=10)
    assert dispatcher.reports == [bags]


def test_a_report_that_delta_encoding_inflates_past_the_limit_is_refused(start_mixer_server: Any) -> None:
    """A Report may carry as many attribute values as a max_message_size message could without
    DELTA_ENCODING (a quarter of it); here 80 bags repeat 1,000 attributes: 80,000 from ~14 KB."""
    dispatcher = RecordingDispatcher()
    server = start_mixer_server(dispatcher, max_message_size=256 * 1024)  # 65,536 values at most
    request = mixer_pb2.ReportRequest()
    first = request.attributes.add()
    first.words.extend(f"a{i}" for i in range(1000))
    for i in range(1000):
        first.strings[-(i + 1)] = -(i + 1)
    for _ in range(79):
        request.attributes.add().words.append("x")
    with grpc.insecure_channel(server.address) as ch:
        error = rpc_error(stub(ch).Report, request)
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "the report's bags hold more than 65536 attribute values in all" in str(error.details())
        del request.attributes[60:]  # 60,000 values
        assert stub(ch).Report(request, timeout=10) == mixer_pb2.ReportResponse()
    assert [len(bags) for bags in dispatcher.reports] == [60]


def _metrics_text(server: Any) -> str:
    with urllib.request.urlopen(server.monitoring_url + "/metrics", timeout=5) as answer:
        return answer.read().decode()


def test_a_connection_holds_at_most_max_concurrent_streams_open(start_mixer_server: Any) -> None:
    server = start_mixer_server(max_concurrent_streams=1)
    release = threading.Event()

    def messages() -> Iterator[bytes]:
        release.wait(10)
        return
        yield b""  # a generator that sends nothing until released

    with grpc.insecure_channel(server.address) as ch:
        als = ch.stream_unary("/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs")
        stream = als.future(messages(), timeout=10)  # holds the connection's one stream
        deadline = time.monotonic() + 5
        while "mixerd_envoy_accesslog_streams_open 1.0" not in _metrics_text(server):
            assert time.monotonic() < deadline, "the stream did not open"
            time.sleep(0.02)
        with pytest.raises(grpc.RpcError) as info:
            stub(ch).Check(mixer_pb2.CheckRequest(), timeout=0.5)  # waits for a free stream
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        release.set()
        stream.result()
        assert stub(ch).Check(mixer_pb2.CheckRequest(), timeout=5).precondition.status.code == 0


# -- errors ----------------------------------------------------------------------------------------


def _bad_index_bag() -> attributes_pb2.CompressedAttributes:
    return attributes_pb2.CompressedAttributes(int64s={999: 1})


@pytest.mark.parametrize("method", ["Check", "Report"])
def test_a_larger_global_dictionary_is_internal(channel: grpc.Channel, method: str) -> None:
    request: Any = (
        mixer_pb2.CheckRequest(global_word_count=300)
        if method == "Check"
        else mixer_pb2.ReportRequest(global_word_count=300)
    )
    error = rpc_error(getattr(stub(channel), method), request)
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == (
        "inconsistent global dictionary versions used: mixer knows 222 words, caller knows 300"
    )


def test_a_smaller_global_dictionary_is_fine(channel: grpc.Channel) -> None:
    response = stub(channel).Check(mixer_pb2.CheckRequest(global_word_count=111), timeout=10)
    assert response.precondition.status.code == 0


def test_check_with_an_undefined_word_index_is_invalid_argument(channel: grpc.Channel) -> None:
    error = rpc_error(stub(channel).Check, mixer_pb2.CheckRequest(attributes=_bad_index_bag()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("attribute index 999 is not defined in the available dictionaries")


def test_check_with_a_duplicate_attribute_is_invalid_argument(channel: grpc.Channel) -> None:
    bag = attributes_pb2.CompressedAttributes(words=["x"], int64s={-1: 1}, bools={-1: True})
    error = rpc_error(stub(channel).Check, mixer_pb2.CheckRequest(attributes=bag))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "duplicate attribute 'x' (in int64s and bools)"


def test_report_keeps_the_good_bags_and_names_the_bad_ones(start_mixer_server: Any) -> None:
    dispatcher = RecordingDispatcher()
    server = start_mixer_server(dispatcher)
    bags = [typical_http_bag(n) for n in range(5)]
    request = encode_report(bags)
    request.attributes[2].CopyFrom(_bad_index_bag())
    with grpc.insecure_channel(server.address) as ch:
        error = rpc_error(stub(ch).Report, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("report bag 2 of 5: attribute index 999 is not defined")
    assert dispatcher.reports == [[bags[0], bags[1], bags[3], bags[4]]]
    assert server.stats.decode_errors == 1


@pytest.mark.parametrize(
    ("kind", "seconds", "reason"),
    [
        ("timestamps", 10**15, "timestamp 1000000000000000s 0ns is outside protobuf's range (0001-01-01.."),
        ("timestamps", -(10**15), "timestamp -1000000000000000s 0ns is outside protobuf's range"),
        ("durations", 10**15, "duration 1000000000000000s 0ns is outside protobuf's range (+-10000 years)"),
    ],
)
def test_a_bag_with_a_value_no_one_can_represent_fails_alone(
    start_mixer_server: Any, kind: str, seconds: int, reason: str
) -> None:
    """A time out of protobuf's range (Python's datetime cannot hold it either) once failed the whole
    Report in the first adapter that converted it; now that bag alone is refused, and counted."""
    dispatcher = RecordingDispatcher()
    server = start_mixer_server(dispatcher)
    bags = [typical_http_bag(n) for n in range(3)]
    request = encode_report(bags)
    values = getattr(request.attributes[1], kind)
    key = next(iter(values))
    values[key].seconds, values[key].nanos = seconds, 0
    name = GLOBAL_WORDS[key] if key >= 0 else request.default_words[~key]
    alone = encode_attributes(bags[1])
    next(iter(getattr(alone, kind).values())).seconds = seconds  # nanos kept: any out-of-range value
    with grpc.insecure_channel(server.address) as ch:
        error = rpc_error(stub(ch).Report, request)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details().startswith(f"report bag 1 of 3: attribute {name!r}: {reason}")
        check = rpc_error(stub(ch).Check, mixer_pb2.CheckRequest(attributes=alone))
        assert check.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "is outside protobuf's range" in check.details()
    assert dispatcher.reports == [[bags[0], bags[2]]]
    assert server.stats.decode_errors == 2


def test_report_lists_a_few_bad_bags_and_counts_the_rest(channel: grpc.Channel) -> None:
    request = mixer_pb2.ReportRequest(attributes=[_bad_index_bag() for _ in range(100)])
    error = rpc_error(stub(channel).Report, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().count("report bag") == 5
    assert error.details().endswith("; and 95 more bad bags")


@pytest.mark.parametrize(("path", "kind"), [(CHECK, "CheckRequest"), (REPORT, "ReportRequest")])
def test_bytes_that_are_not_protobuf_are_invalid_argument(
    channel: grpc.Channel, path: str, kind: str
) -> None:
    error = rpc_error(channel.unary_unary(path), b"\xff\xff\xff")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"malformed {kind}: ")


@pytest.mark.parametrize("method", ["Check", "Report"])
def test_an_unexpected_exception_is_internal_and_logged(
    start_mixer_server: Any, caplog: pytest.LogCaptureFixture, method: str
) -> None:
    server = start_mixer_server(FailingDispatcher())
    request: Any = mixer_pb2.CheckRequest() if method == "Check" else encode_report([typical_http_bag()])
    with grpc.insecure_channel(server.address) as ch:
        error = rpc_error(getattr(stub(ch), method), request)
        assert error.code() == grpc.StatusCode.INTERNAL
        assert error.details() == f"mixerd internal error in {method} (RuntimeError); see the server log"
        # still serving afterwards
        assert health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10).status == 1
    (record,) = [r for r in caplog.records if r.name == "mixerd.server.mixer_api"]
    assert record.exc_info is not None and "exploded" in str(record.exc_info[1])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=300), path=st.sampled_from([CHECK, REPORT]))
def test_any_bytes_get_a_clean_status(channel: grpc.Channel, payload: bytes, path: str) -> None:
    allowed = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL}
    try:
        channel.unary_unary(path)(payload, timeout=10)
    except grpc.RpcError as e:
        assert e.code() in allowed, (e.code(), e.details())
    assert stub(channel).Check(mixer_pb2.CheckRequest(), timeout=10).precondition.valid_use_count == 10000


def test_a_request_over_max_message_size_is_refused(start_mixer_server: Any) -> None:
    server = start_mixer_server(max_message_size=1024)
    with grpc.insecure_channel(server.address) as ch:
        assert stub(ch).Check(check_request({"request.path": "/a"}), timeout=10).precondition.status.code == 0
        error = rpc_error(stub(ch).Check, check_request({"request.path": "/" + "a" * 2000}))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


# -- health and reflection ---------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["", MIXER])
def test_health_reports_serving(channel: grpc.Channel, service: str) -> None:
    response = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=10
    )
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_health_of_an_unknown_service_is_not_found(channel: grpc.Channel) -> None:
    error = rpc_error(
        health_pb2_grpc.HealthStub(channel).Check, health_pb2.HealthCheckRequest(service="nope")
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_and_describes_the_services(channel: grpc.Channel) -> None:
    database = ProtoReflectionDescriptorDatabase(channel)
    services = set(database.get_services())
    assert {MIXER, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= services
    # Plus the Envoy-facing services (mixer/server/envoy), each listed once it is written.
    assert services - {MIXER, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= {
        "envoy.service.auth.v3.Authorization",
        "envoy.service.ratelimit.v3.RateLimitService",
        "envoy.service.accesslog.v3.AccessLogService",
    }
    service = descriptor_pool.DescriptorPool(database).FindServiceByName(MIXER)
    assert [m.name for m in service.methods] == ["Check", "Report"]


# -- monitoring HTTP -------------------------------------------------------------------------------


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = http_get(url + "/metrics")
    assert status == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_requests_by_outcome(mixer_server: Any, channel: grpc.Channel) -> None:
    before = scrape(mixer_server.monitoring_url)
    assert before[("mixerd_check_requests_total", (("code", "OK"),))] == 0
    quotas = {
        "a": mixer_pb2.CheckRequest.QuotaParams(amount=1),
        "b": mixer_pb2.CheckRequest.QuotaParams(amount=1),
    }
    stub(channel).Check(check_request(), timeout=10)
    stub(channel).Check(check_request(quotas=quotas), timeout=10)
    rpc_error(stub(channel).Check, mixer_pb2.CheckRequest(attributes=_bad_index_bag()))
    stub(channel).Report(encode_report([typical_http_bag(n) for n in range(3)]), timeout=10)
    rpc_error(stub(channel).Report, mixer_pb2.ReportRequest(global_word_count=999))

    after = scrape(mixer_server.monitoring_url)
    assert after[("mixerd_check_requests_total", (("code", "OK"),))] == 2
    assert after[("mixerd_check_requests_total", (("code", "INVALID_ARGUMENT"),))] == 1
    assert after[("mixerd_report_requests_total", (("code", "OK"),))] == 1
    assert after[("mixerd_report_requests_total", (("code", "INTERNAL"),))] == 1
    assert after[("mixerd_report_bags_total", ())] == 3
    assert after[("mixerd_quota_requests_total", ())] == 2
    assert after[("mixerd_decode_errors_total", ())] == 1
    assert after[("process_cpu_seconds_total", ())] > 0


def test_version_healthz_readyz(mixer_server: Any) -> None:
    status, body = http_get(mixer_server.monitoring_url + "/version")
    assert status == 200 and json.loads(body) == {"version": mixerd.__version__}
    assert http_get(mixer_server.monitoring_url + "/healthz") == (200, "ok\n")
    assert http_get(mixer_server.monitoring_url + "/readyz") == (200, "ok\n")
    assert http_get(mixer_server.monitoring_url + "/nope")[0] == 404


# -- start-up and shutdown -------------------------------------------------------------------------


class SlowDispatcher(SimpleDispatcher):
    def __init__(self) -> None:
        self.entered = threading.Event()

    async def precondition(self, bag: AttributeBag) -> CheckOutcome:
        self.entered.set()
        await asyncio.sleep(0.3)
        return await super().precondition(bag)


def test_shutdown_turns_not_serving_and_lets_in_flight_calls_finish(start_mixer_server: Any) -> None:
    dispatcher = SlowDispatcher()
    server = start_mixer_server(dispatcher)
    with grpc.insecure_channel(server.address) as ch:
        watch = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(service=MIXER), timeout=10)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        in_flight = stub(ch).Check.future(mixer_pb2.CheckRequest(), timeout=10)
        assert dispatcher.entered.wait(5)
        stopping = threading.Thread(target=server.stop, args=(5.0,))
        stopping.start()
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert http_get(server.monitoring_url + "/readyz")[0] == 503
        assert in_flight.result().precondition.status.code == 0
        watch.cancel()  # the last open call; the stop should end well before its 5 s grace
        stopping.join(3)
    assert not stopping.is_alive()


def test_a_missing_config_folder_is_refused(tmp_path: Path) -> None:
    settings = Settings(
        address="127.0.0.1", port=0, monitoring_port=0, admin_port=0, config=str(tmp_path / "missing")
    )
    with pytest.raises(ConfigError, match=r"--config .*missing: no such folder"):
        asyncio.run(start(settings))


@pytest.mark.parametrize(
    ("setting", "what"),
    [("port", "gRPC"), ("monitoring_port", "monitoring"), ("admin_port", "the admin page")],
)
def test_a_busy_port_is_refused(setting: str, what: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ports = {"port": 0, "monitoring_port": 0, "admin_port": 0, setting: port}
        settings = Settings(address="127.0.0.1", **ports)
        with pytest.raises(StartError, match=f"cannot listen for {what} on 127.0.0.1:{port}: "):
            asyncio.run(start(settings))


def _serve_process(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIXERD_")}
    return subprocess.Popen(
        [sys.executable, "-m", "mixerd", "serve", "--address", "127.0.0.1", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_its_ports_and_exits_0_on_signal(sig: signal.Signals) -> None:
    proc = _serve_process("--port", "0", "--monitoring-port", "0", "--admin-port", "0")
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().rstrip("\n") for _ in range(3)]
        matches = [READY_PATTERN.match(line) for line in lines]
        assert all(matches), lines
        (grpc_match, http_match, admin_match) = matches
        assert grpc_match and http_match and http_match.group(1) == "monitoring"
        assert admin_match and admin_match.group(1, 2) == ("admin", "127.0.0.1")
        assert served_services(admin_match.group(1)) == []
        named = served_services(grpc_match.group(1))
        assert named == [MIXER, *ENVOY_SERVICES]
        with grpc.insecure_channel(f"127.0.0.1:{grpc_match.group(3)}") as ch:
            assert stub(ch).Check(check_request(), timeout=10).precondition.valid_use_count == 10000
            # The line names what the port really serves: every API reflection lists, but for its own
            # and health's plumbing.
            listed = ProtoReflectionDescriptorDatabase(ch).get_services()
        assert set(named) == set(listed) - {
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        }
        assert http_get(f"http://127.0.0.1:{http_match.group(3)}/healthz")[0] == 200
        assert http_get(f"http://127.0.0.1:{admin_match.group(3)}/debug/routes")[0] == 200
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_with_a_missing_config_folder_exits_2(tmp_path: Path) -> None:
    proc = _serve_process("--port", "0", "--monitoring-port", "0", "--config", str(tmp_path / "nowhere"))
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert re.search(r"mixerd serve: error: --config \S*nowhere: no such folder", stderr), stderr


def test_serve_refuses_an_unknown_log_level(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--port", "0", "--monitoring-port", "0", "--log-level", "loud"]) == 2
    assert "--log-level 'loud': use one of debug, info, warning, error" in capsys.readouterr().err
