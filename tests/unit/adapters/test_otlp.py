"""otlp and zipkin: params and their checks, tracespan instances as SDK spans (ids, kind, status,
attributes, resource, sampling, the shared-span rewrite) checked as the OTLP exporter's encoder puts
them on the wire, and delivery through OTLPSpanExporter to a real OTLP/gRPC receiver
(tests/peers/otlp_receiver.py: opentelemetry-proto's TraceService on grpc) with its failures: a stopped
receiver, refusals, partial successes, TLS, and environment variables that must not change a handler.

tests/integration/test_otlp.py runs the same behind a real mixerd.
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from opentelemetry.sdk.trace import ReadableSpan
from peers import otlp_receiver as peer

from mixerd.adapter import Env, InstanceInfo, ValueType
from mixerd.attribute.values import Duration, Timestamp
from mixerd.config import ConfigRejected, load_snapshot
from mixerd.params import ParamsError, params_to_dict, read_params
from mixerd.plugins import collect_adapters, load_adapters, make_plugin_manager
from mixerd.runtime.stats import RuntimeCollector, RuntimeStats
from mixerd.templates import TraceSpanInstance
from mixerd_adapters.otlp import (
    OtlpHandler,
    Params,
    Tls,
    ZipkinParams,
    build,
    build_zipkin,
    mixerd_adapter_info,
    validate,
    zipkin_to_otlp,
)
from mixerd_adapters.otlp import handler as handler_module
from mixerd_adapters.otlp.spans import (
    InvalidSpan,
    Item,
    Outcome,
    SpanMapper,
    derived_span_id,
)

HANDLER = "otlp.handler.istio-system"
SPANS = "spans.instance.istio-system"
TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
PARENT = "00f067aa0ba902b7"
T0 = Timestamp.parse("2026-11-20T10:00:00.123456789Z")
MS = 1_000_000
IP4 = bytes([10, 0, 0, 1])
IP6 = bytes.fromhex("20010db8000000000000000000000001")
REPO = Path(__file__).resolve().parents[3]


def span(**fields: Any) -> TraceSpanInstance:
    """A traced server span of SPANS; `fields` replace the defaults."""
    values: dict[str, Any] = {
        "name": SPANS,
        "trace_id": TRACE,
        "span_id": SPAN,
        "parent_span_id": PARENT,
        "span_name": "/orders",
        "start_time": T0,
        "end_time": Timestamp(T0 + 25 * MS),
        **fields,
    }
    return TraceSpanInstance(**values)


def view(s: Span) -> dict[str, Any]:
    """A span as plain values: ids in hex, enums by name, attributes as a dict."""
    return {
        "trace_id": s.trace_id.hex(),
        "span_id": s.span_id.hex(),
        "parent_span_id": s.parent_span_id.hex(),
        "name": s.name,
        "kind": Span.SpanKind.Name(s.kind),
        "start": s.start_time_unix_nano,
        "end": s.end_time_unix_nano,
        "status": (Status.StatusCode.Name(s.status.code), s.status.message),
        "attributes": peer.attributes(s.attributes),
    }


def wire(item: Item | Outcome) -> tuple[dict[str, Any], Span]:
    """The span as the exporter sends it (its encoder, encode_spans): (resource attributes, OTLP span)."""
    assert not isinstance(item, Outcome), item
    (resource_spans,) = encode_spans([item]).resource_spans
    (scope_spans,) = resource_spans.scope_spans
    (s,) = scope_spans.spans
    return peer.attributes(resource_spans.resource.attributes), s


def convert(instance: TraceSpanInstance, mapper: SpanMapper | None = None) -> tuple[str, dict[str, Any]]:
    resource, s = wire((mapper or SpanMapper({})).convert(instance))
    assert list(resource) == ["service.name"]
    return resource["service.name"], view(s)


# -- spans ------------------------------------------------------------------------------------------------


def test_a_server_span_with_every_field():
    instance = span(
        http_status_code=503,
        source_name="frontend",
        source_ip=IP4,
        destination_name="orders",
        destination_ip=IP6,
        request_size=120,
        request_total_size=400,
        response_size=0,
        response_total_size=300,
        api_protocol="http",
        span_tags={"http.method": "GET", "retries": 2, "ratio": 0.5, "cached": False},
    )
    sizes = {"request_size": ValueType.INT64, "response_size": ValueType.INT64}
    mapper = SpanMapper({SPANS: InstanceInfo(SPANS, "tracespan", sizes)})
    assert convert(instance, mapper) == (
        "orders",  # a server span is the destination's
        {
            "trace_id": TRACE,
            "span_id": SPAN,
            "parent_span_id": PARENT,
            "name": "/orders",
            "kind": "SPAN_KIND_SERVER",
            "start": T0,
            "end": T0 + 25 * MS,
            "status": ("STATUS_CODE_ERROR", ""),
            "attributes": {
                "http.response.status_code": 503,
                "source.name": "frontend",
                "source.address": "10.0.0.1",
                "destination.name": "orders",
                "destination.address": "2001:db8::1",
                # the instance sets request_size and response_size (0 is a size): the total sizes it
                # does not set are left out
                "http.request.body.size": 120,
                "http.response.body.size": 0,
                "api.protocol": "http",
                "http.method": "GET",
                "retries": 2,
                "ratio": 0.5,
                "cached": False,
            },
        },
    )


def test_a_client_span_is_the_sources_and_of_kind_client():
    service, s = convert(span(client_span=True, source_name="frontend", destination_name="orders"))
    assert (service, s["kind"]) == ("frontend", "SPAN_KIND_CLIENT")


def test_a_span_without_a_service_name_is_an_unknown_service():
    assert convert(span(source_name="frontend"))[0] == "unknown_service"
    assert convert(span(client_span=True, destination_name="orders"))[0] == "unknown_service"


@pytest.mark.parametrize(
    ("code", "client", "status"),
    [
        (0, False, "STATUS_CODE_UNSET"),
        (200, False, "STATUS_CODE_UNSET"),
        (302, True, "STATUS_CODE_UNSET"),
        (404, False, "STATUS_CODE_UNSET"),  # the server answered the request as it should
        (404, True, "STATUS_CODE_ERROR"),  # the client did not get what it asked for
        (499, True, "STATUS_CODE_ERROR"),
        (500, False, "STATUS_CODE_ERROR"),
        (503, True, "STATUS_CODE_ERROR"),
    ],
)
def test_the_http_status_gives_the_span_status(code, client, status):
    s = convert(span(http_status_code=code, client_span=client))[1]
    assert s["status"] == (status, "")
    assert s["attributes"].get("http.response.status_code") == (code or None)  # 0: not HTTP, left out


def test_fields_without_values_are_left_out():
    assert convert(span())[1]["attributes"] == {}  # an instance the handler was not told about: sizes 0


def test_sizes_are_left_out_when_the_instance_does_not_set_them():
    sizes = {"request_total_size": ValueType.INT64}
    mapper = SpanMapper({SPANS: InstanceInfo(SPANS, "tracespan", sizes)})
    assert convert(span(request_size=5, request_total_size=0), mapper)[1]["attributes"] == {
        "http.request.size": 0
    }


def test_a_tag_overrides_a_fixed_attribute_of_the_same_name():
    s = convert(span(source_name="frontend", span_tags={"source.name": "from-a-tag", "x": "y"}))[1]
    assert list(s["attributes"].items()) == [("source.name", "from-a-tag"), ("x", "y")]


def test_a_64_bit_trace_id_is_padded_and_hex_may_be_upper_case():
    s = convert(span(trace_id="463AC35C9F6413AD", span_id=SPAN.upper(), parent_span_id=""))[1]
    assert (s["trace_id"], s["span_id"], s["parent_span_id"]) == ("0" * 16 + "463ac35c9f6413ad", SPAN, "")


def test_instances_without_ids_are_untraced():
    mapper = SpanMapper({})
    assert mapper.convert(span(trace_id="")) is Outcome.UNTRACED
    assert mapper.convert(span(span_id="")) is Outcome.UNTRACED
    assert mapper.convert(TraceSpanInstance(name=SPANS)) is Outcome.UNTRACED


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"trace_id": "xyz"}, "trace id 'xyz' is not 16 or 32 hex digits"),
        ({"trace_id": TRACE[:31]}, f"trace id {TRACE[:31]!r} is not 16 or 32 hex digits"),
        ({"trace_id": "0" * 32}, f"trace id {'0' * 32!r} is all zeros"),
        (
            {"trace_id": "ab cd" * 8},
            "trace id 'ab cdab cdab cdab cdab cdab cdab cdab cd' is not 16 or 32 hex digits",
        ),
        ({"trace_id": "a" * 50}, f"trace id {'a' * 37 + '...'!r} is not 16 or 32 hex digits"),
        ({"span_id": TRACE}, f"span id {TRACE!r} is not 16 hex digits"),
        ({"span_id": "0" * 16}, f"span id {'0' * 16!r} is all zeros"),
        ({"parent_span_id": "123"}, "parent span id '123' is not 16 hex digits"),
        ({"span_name": "/\udcff"}, "a value cannot be sent: "),
        ({"span_tags": {"k": "\udcff"}}, "a value cannot be sent: "),
    ],
)
def test_invalid_instances(fields, message):
    with pytest.raises(InvalidSpan) as e:
        SpanMapper({}).convert(span(**fields))
    assert str(e.value).startswith(message)
    if not message.endswith(": "):
        assert str(e.value) == message


def test_the_shared_span_rewrite_puts_a_client_span_between_the_parent_and_the_server_span():
    derived = derived_span_id(bytes.fromhex(SPAN))
    assert len(derived) == 8 and derived != bytes.fromhex(SPAN)
    assert derived == derived_span_id(bytes.fromhex(SPAN))  # every replica derives the same id
    client = convert(span(client_span=True, rewrite_client_span_id=True))[1]
    server = convert(span(rewrite_client_span_id=True))[1]
    assert (client["parent_span_id"], client["span_id"]) == (PARENT, derived.hex())
    assert (server["parent_span_id"], server["span_id"]) == (derived.hex(), SPAN)
    # without the flag the ids are as given
    assert convert(span(client_span=True))[1]["span_id"] == SPAN


def test_sampling_keeps_a_trace_by_the_low_64_bits_of_its_id():
    half = SpanMapper({}, sampling_probability=0.5)
    kept = "f" * 16 + "7fffffffffffffff"
    dropped = "0" * 15 + "1" + "8000000000000000"
    assert isinstance(half.convert(span(trace_id=kept)), ReadableSpan)
    assert half.convert(span(trace_id=dropped)) is Outcome.SAMPLED_OUT
    assert half.convert(span(trace_id=dropped, span_id="1" * 16)) is Outcome.SAMPLED_OUT  # the whole trace
    none = SpanMapper({}, sampling_probability=0.0)
    assert none.convert(span(trace_id="0" * 31 + "1")) is Outcome.SAMPLED_OUT
    every = SpanMapper({}, sampling_probability=1.0)
    assert isinstance(every.convert(span(trace_id="f" * 32)), ReadableSpan)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("GET", AnyValue(string_value="GET")),
        (200, AnyValue(int_value=200)),
        (-(1 << 63), AnyValue(int_value=-(1 << 63))),
        (1 << 64, AnyValue(string_value=str(1 << 64))),
        (0.25, AnyValue(double_value=0.25)),
        (True, AnyValue(bool_value=True)),
        (IP4, AnyValue(string_value="10.0.0.1")),
        (bytes(10) + b"\xff\xff" + IP4, AnyValue(string_value="10.0.0.1")),
        (IP6, AnyValue(string_value="2001:db8::1")),
        (b"\x01\x02\x03", AnyValue(bytes_value=b"\x01\x02\x03")),
        (T0, AnyValue(string_value="2026-11-20T10:00:00.123456789Z")),
        (Duration(1_500_000_000), AnyValue(string_value="1.5s")),
    ],
)
def test_attribute_values(value, expected):
    assert tag_on_the_wire(value) == expected


def tag_on_the_wire(value: Any) -> AnyValue:
    _, s = wire(SpanMapper({}).convert(span(span_tags={"v": value})))
    (kv,) = s.attributes
    return kv.value


def test_a_string_map_is_a_key_value_list():
    out = tag_on_the_wire({"b": "2", "a": "1", "gone": None})
    assert peer.value(out) == {"b": "2", "a": "1"}
    assert tag_on_the_wire({}).WhichOneof("value") == "kvlist_value"


def test_an_export_request_groups_spans_by_service_in_order():
    mapper = SpanMapper({})
    items = [
        mapper.convert(span(destination_name="b", span_id="1" * 16)),
        mapper.convert(span(destination_name="a", span_id="2" * 16)),
        mapper.convert(span(destination_name="b", span_id="3" * 16)),
    ]
    request = encode_spans(items)  # type: ignore[arg-type]
    assert [
        (
            peer.attributes(rs.resource.attributes),
            [(ss.scope.name, ss.scope.version, [s.span_id.hex() for s in ss.spans]) for ss in rs.scope_spans],
        )
        for rs in request.resource_spans
    ] == [
        ({"service.name": "b"}, [("mixerd", "0.1.0", ["1" * 16, "3" * 16])]),
        ({"service.name": "a"}, [("mixerd", "0.1.0", ["2" * 16])]),
    ]


# -- params -----------------------------------------------------------------------------------------------


def test_defaults():
    assert params_to_dict(read_params(Params, None)) == {
        "endpoint": "localhost:4317",
        "headers": {},
        "tls": {"insecure": True, "caFile": "", "certFile": "", "keyFile": ""},
        "timeout": "10s",
        "samplingProbability": 1.0,
        "queueCapacity": 2048,
        "batchSize": 512,
        "flushInterval": "5s",
    }
    assert params_to_dict(read_params(ZipkinParams, None)) == {
        "url": "http://localhost:9411/api/v2/spans",
        "sampleProbability": 0.0,
    }


def test_params_read_both_spellings_and_nested_tls():
    raw = {
        "endpoint": "[::1]:4317",
        "headers": {"Authorization": "Bearer abc"},
        "tls": {"insecure": False, "ca_file": "/ca.pem", "certFile": "/c.pem", "keyFile": "/k.pem"},
        "sampling_probability": "0.25",
        "batchSize": 10,
    }
    assert read_params(Params, raw) == Params(
        endpoint="[::1]:4317",
        headers={"Authorization": "Bearer abc"},
        tls=Tls(insecure=False, ca_file="/ca.pem", cert_file="/c.pem", key_file="/k.pem"),
        sampling_probability=0.25,
        batch_size=10,
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"endpoint": "http://collector:4317"},
            [
                (
                    ".endpoint",
                    "expected host:port without a scheme (TLS is chosen by tls.insecure), "
                    "got 'http://collector:4317'",
                )
            ],
        ),
        ({"endpoint": "collector"}, [(".endpoint", "expected host:port, got 'collector'")]),
        ({"endpoint": ":4317"}, [(".endpoint", "expected host:port, got ':4317'")]),
        ({"endpoint": "collector:0"}, [(".endpoint", "port must be between 1 and 65535, got 0")]),
        (
            {"endpoint": "::1:4317"},
            [(".endpoint", "an IPv6 address needs brackets ([::1]:4317), got '::1:4317'")],
        ),
        ({"endpoint": "[nope]:4317"}, [(".endpoint", "[nope] is not an IPv6 address")]),
        (
            {
                "headers": {
                    "x auth": "a",
                    "grpc-timeout": "1",
                    "trace-bin": "x",
                    "X-Team": "a",
                    "x-team": "b",
                    "x-ok": "line\nbreak",
                }
            },
            [
                (".headers['x auth']", "a header name may hold only letters, digits, '-', '_' and '.'"),
                (".headers['grpc-timeout']", "grpc- headers are reserved for gRPC itself"),
                (".headers['trace-bin']", "binary (-bin) headers are not supported"),
                (".headers['x-team']", "the same header as 'X-Team' (names are case-insensitive)"),
                (".headers['x-ok']", "a header value may hold only printable ASCII characters"),
            ],
        ),
        (
            {"tls": {"caFile": "/ca.pem", "keyFile": "/k.pem"}},
            [
                (".tls.caFile", "is used only with TLS: set insecure: false"),
                (".tls.keyFile", "is used only with TLS: set insecure: false"),
                (".tls.certFile", "is needed with keyFile (the client certificate)"),
            ],
        ),
        (
            {"tls": {"insecure": False, "certFile": "/c.pem"}},
            [(".tls.keyFile", "is needed with certFile (the client certificate's private key)")],
        ),
        (
            {
                "timeout": "0s",
                "samplingProbability": 1.5,
                "queueCapacity": 0,
                "batchSize": 0,
                "flushInterval": "-1s",
            },
            [
                (".timeout", "must be greater than 0, got 0s"),
                (".samplingProbability", "must be between 0 and 1, got 1.5"),
                (".queueCapacity", "must be at least 1, got 0"),
                (".batchSize", "must be at least 1, got 0"),
                (".flushInterval", "must be greater than 0, got -1s"),
            ],
        ),
        (
            {"queueCapacity": 10, "batchSize": 11, "samplingProbability": "nan"},
            [
                (".samplingProbability", "must be between 0 and 1, got nan"),
                (".batchSize", "must not exceed queueCapacity (10), got 11"),
            ],
        ),
    ],
)
def test_params_problems(raw, expected):
    with pytest.raises(ParamsError) as e:
        read_params(Params, raw)
    assert sorted(e.value.problems) == sorted(expected)


@pytest.mark.parametrize(
    ("url", "probability", "expected"),
    [
        ("http://zipkin.istio-system:9411/api/v2/spans", 0.0, Params(endpoint="zipkin.istio-system:9411")),
        (
            "https://traces.example.com/api/v2/spans",
            0.25,
            Params(endpoint="traces.example.com:443", tls=Tls(insecure=False), sampling_probability=0.25),
        ),
        ("http://zipkin", 1.0, Params(endpoint="zipkin:80")),
        ("http://[::1]:9411/", 0.0, Params(endpoint="[::1]:9411")),
    ],
)
def test_zipkin_params_map_onto_the_exporter(url, probability, expected):
    zipkin = read_params(ZipkinParams, {"url": url, "sampleProbability": probability})
    assert zipkin_to_otlp(zipkin) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"url": "zipkin:9411"}, [(".url", "expected an http:// or https:// URL, got 'zipkin:9411'")]),
        ({"url": ""}, [(".url", "expected an http:// or https:// URL, got ''")]),
        ({"url": "http://zipkin:99999/"}, [(".url", "bad port in 'http://zipkin:99999/'")]),
        ({"url": "http://:9411/"}, [(".url", "no host in 'http://:9411/'")]),
        ({"sample_probability": -0.1}, [(".sampleProbability", "must be between 0 and 1, got -0.1")]),
    ],
)
def test_zipkin_params_problems(raw, expected):
    with pytest.raises(ParamsError) as e:
        read_params(ZipkinParams, raw)
    assert e.value.problems == expected


def test_validate_needs_trace_and_span_ids():
    instances = {
        "a.instance.ns": InstanceInfo("a.instance.ns", "tracespan", {"trace_id": ValueType.STRING}),
        "b.instance.ns": InstanceInfo("b.instance.ns", "tracespan", {}),
        "ok.instance.ns": InstanceInfo(
            "ok.instance.ns", "tracespan", {"trace_id": ValueType.STRING, "span_id": ValueType.STRING}
        ),
    }
    assert validate(Params(), instances) == [
        ("", "instance 'a.instance.ns' sets no spanId: none of its spans could be exported"),
        ("", "instance 'b.instance.ns' sets no traceId and spanId: none of its spans could be exported"),
    ]


# -- delivery to a real receiver ----------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Any]:
    with peer.OtlpReceiver() as r:
        yield r


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handler_module, "RETRY_INITIAL_S", 0.01)
    monkeypatch.setattr(handler_module, "RETRY_MAX_S", 0.05)


def params(endpoint: str, **more: Any) -> Params:
    return read_params(Params, {"endpoint": endpoint, "flushInterval": "10ms", **more})


def run(
    p: Any,
    scenario: Callable[[OtlpHandler], Awaitable[Any]],
    make: Callable[[Env], OtlpHandler] = build,
    adapter: str = "otlp",
) -> Any:
    """Build a handler in a running loop, run the scenario, close it as the runtime does."""

    async def main() -> Any:
        env = Env(handler=HANDLER, adapter=adapter, params=p, instances={})
        handler = make(env)
        try:
            return await scenario(handler)
        finally:
            await env.cancel_background()
            await handler.close()

    return asyncio.run(asyncio.wait_for(main(), 10))


async def until(condition: Callable[[], Any], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_spans_reach_the_receiver_with_the_headers(receiver):
    async def scenario(h: OtlpHandler) -> None:
        h.handle_tracespan([span(destination_name="orders"), span(span_id="1" * 16, http_status_code=200)])
        await until(lambda: len(receiver.spans()) == 2)
        await until(lambda: h.delivery_stats()["sent"] == 2)  # (the receiver records before it answers)
        assert h.delivery_stats() == {"queued": 2, "sent": 2, "dropped": 0, "failed": 0}

    run(params(receiver.address, headers={"Authorization": "Bearer abc", "x-team": "mesh"}), scenario)
    assert len(receiver.requests()) == 1  # one batch, one request
    got = [(r.resource, view(r.span)["span_id"], r.attributes) for r in receiver.spans()]
    assert got == [
        ({"service.name": "orders"}, SPAN, {"destination.name": "orders"}),
        ({"service.name": "unknown_service"}, "1" * 16, {"http.response.status_code": 200}),
    ]
    (metadata,) = receiver.metadata()
    assert (metadata["authorization"], metadata["x-team"]) == ("Bearer abc", "mesh")


def test_a_batch_is_exported_when_batch_size_spans_wait(receiver):
    async def scenario(h: OtlpHandler) -> None:
        h.handle_tracespan([span(span_id=f"{i + 1:016x}") for i in range(5)])
        await until(lambda: len(receiver.spans()) == 4)  # long before the flush interval (1 minute)
        assert len(receiver.requests()) == 2

    run(params(receiver.address, batchSize=2, flushInterval="1m"), scenario)


def test_spans_that_are_not_exported_are_counted_and_invalid_ones_logged(receiver, caplog):
    async def scenario(h: OtlpHandler) -> None:
        h.handle_tracespan(
            [
                span(trace_id=""),
                span(),  # TRACE's low 64 bits are 0x8448...: above the bound of probability 0.5
                span(trace_id="1" * 32, span_id="nope"),
                span(trace_id="1" * 32),
            ]
        )
        await until(lambda: len(receiver.spans()) == 1)
        assert h.span_counts() == {"untraced": 1, "sampled_out": 1, "invalid": 1}
        assert h.delivery_stats()["queued"] == 1

    run(params(receiver.address, samplingProbability=0.5), scenario)
    assert caplog.messages == [
        f"{HANDLER}: {SPANS}: not exported: span id 'nope' is not 16 hex digits (1 invalid so far)"
    ]


def test_a_stopped_receiver_fills_the_queue_then_drops_and_delivery_resumes(receiver, fast_retries):
    async def scenario(h: OtlpHandler) -> None:
        h.handle_tracespan([span(span_id=f"{1:016x}")])
        await until(lambda: len(receiver.spans()) == 1)
        await until(lambda: h.delivery_stats()["sent"] == 1)  # (the receiver records before it answers)
        receiver.stop()
        h.handle_tracespan([span(span_id=f"{i:016x}") for i in range(2, 7)])  # 2..4 wait, 5 and 6 drop
        await until(lambda: h.delivery_stats()["failed"] >= 2)
        stats = h.delivery_stats()
        assert (stats["queued"], stats["sent"], stats["dropped"]) == (4, 1, 2)
        receiver.start()  # same port
        await until(lambda: len(receiver.spans()) == 4)
        await until(lambda: h.delivery_stats()["sent"] == 4)  # (the receiver records before it answers)

    run(params(receiver.address, queueCapacity=3, batchSize=3), scenario)
    assert [int(view(r.span)["span_id"], 16) for r in receiver.spans()] == [1, 2, 3, 4]


def mixerd_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What mixerd logged. (The exporter logs each failure's gRPC status too, on its own logger, but at
    most once per 20 s for the whole process: whether a test sees it depends on the tests before.)"""
    return [r.getMessage() for r in caplog.records if r.name.startswith("mixerd.")]


def export_failed(receiver: Any, attempts: int, retry: str) -> str:
    return (
        f"{HANDLER}: sending 1 items failed ({attempts} attempts so far; retry in {retry}s): OTLP receiver "
        f"at {receiver.address}: the export failed (the OTLP exporter logs the gRPC status)"
    )


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED])
def test_a_failed_export_is_retried_by_the_queue_only(receiver, fast_retries, caplog, code):
    """Every failure, retryable in OTLP's terms or not: the exporter answers only FAILURE, so the queue
    retries (a refusal such as UNAUTHENTICATED is no longer given up and counted as rejected). The
    exporter itself retries nothing: each failed attempt is one call the receiver saw."""
    receiver.fail_with = code

    async def scenario(h: OtlpHandler) -> None:
        h.handle_tracespan([span()])
        await until(lambda: receiver.attempts >= 2)
        receiver.fail_with = None
        await until(lambda: len(receiver.spans()) == 1)
        await until(lambda: h.delivery_stats()["sent"] == 1)
        stats = h.delivery_stats()
        assert stats["failed"] >= 2 and receiver.attempts == stats["failed"] + 1

    run(params(receiver.address), scenario)
    assert mixerd_messages(caplog)[0] == export_failed(receiver, 1, "0.0")


@pytest.mark.parametrize("partial", [(1, "span 2 is too old"), (0, "attributes were truncated")])
def test_a_partial_success_counts_as_sent_and_is_not_seen(receiver, caplog, partial):
    """The exporter does not pass the receiver's answer on: spans a receiver says it rejected count as
    sent, and its message is not logged."""
    caplog.set_level(logging.INFO)
    receiver.partial = partial

    async def scenario(h: OtlpHandler) -> None:
        h.handle_tracespan([span(), span(span_id="1" * 16)])
        await until(lambda: h.delivery_stats()["sent"] == 2)
        assert h.span_counts() == {"untraced": 0, "sampled_out": 0, "invalid": 0}

    run(params(receiver.address), scenario)
    assert len(receiver.spans()) == 2
    assert caplog.messages == []


def test_the_exporters_environment_variables_change_nothing(receiver, monkeypatch):
    """OTEL_EXPORTER_OTLP_* variables fill in what the exporter is not given: mixerd gives it all."""
    elsewhere = "http://127.0.0.1:9"
    for prefix in ("OTEL_EXPORTER_OTLP_", "OTEL_EXPORTER_OTLP_TRACES_"):
        monkeypatch.setenv(f"{prefix}ENDPOINT", elsewhere)
        monkeypatch.setenv(f"{prefix}HEADERS", "x-from-env=yes")
        monkeypatch.setenv(f"{prefix}INSECURE", "false")
        monkeypatch.setenv(f"{prefix}TIMEOUT", "0.001")
        monkeypatch.setenv(f"{prefix}COMPRESSION", "gzip")

    async def scenario(h: OtlpHandler) -> None:
        h.handle_tracespan([span()])
        await until(lambda: len(receiver.spans()) == 1)
        assert h.delivery_stats()["failed"] == 0

    run(params(receiver.address), scenario)  # no headers in the params
    (metadata,) = receiver.metadata()
    assert "x-from-env" not in metadata


def test_no_rejected_span_counter_is_published_for_an_otlp_handler(receiver):
    async def scenario(h: OtlpHandler) -> list[str]:
        built = SimpleNamespace(handler=h, config=SimpleNamespace(adapter=SimpleNamespace(name="otlp")))
        collector = RuntimeCollector(RuntimeStats(), lambda: {HANDLER: built})
        return [
            sample.name
            for family in collector.collect()
            for sample in family.samples
            if sample.name.startswith("mixerd_adapter_spans_")
        ]

    published = run(params(receiver.address), scenario)
    assert "mixerd_adapter_spans_untraced_total" in published
    assert "mixerd_adapter_spans_rejected_total" not in published


def test_a_batch_that_went_out_in_a_send_cut_short_is_not_sent_again(receiver):
    """The queue retries a batch it did not see succeed (a send still running when the runtime cancelled
    the delivery task, then the final delivery at close): what was exported is skipped."""
    mapper = SpanMapper({})

    async def scenario(h: OtlpHandler) -> None:
        batch = [mapper.convert(span(span_id=f"{i:016x}")) for i in (1, 2)]
        await asyncio.to_thread(h._send, batch)
        await asyncio.to_thread(h._send, batch)  # the same batch again: nothing to send
        await asyncio.to_thread(h._send, [*batch, mapper.convert(span(span_id=f"{3:016x}"))])  # only 3
        fresh = [mapper.convert(span(span_id=f"{i:016x}")) for i in (1, 2)]
        await asyncio.to_thread(h._send, fresh)  # new items, even with the same ids: sent

    run(params(receiver.address), scenario)
    assert [
        [s.span_id.hex()[-1] for rs in r.resource_spans for s in rs.scope_spans[0].spans]
        for r in receiver.requests()
    ] == [
        ["1", "2"],
        ["3"],
        ["1", "2"],
    ]


def test_close_exports_what_is_queued_and_can_be_called_twice(receiver):
    async def main() -> OtlpHandler:
        env = Env(
            handler=HANDLER, adapter="otlp", params=params(receiver.address, flushInterval="1m"), instances={}
        )
        h = build(env)
        h.handle_tracespan([span()])
        await env.cancel_background()  # what the runtime does before close()
        await h.close()
        await h.close()
        return h

    h = asyncio.run(main())
    assert [view(r.span)["span_id"] for r in receiver.spans()] == [SPAN]
    assert h.delivery_stats() == {"queued": 1, "sent": 1, "dropped": 0, "failed": 0}


def test_close_with_the_receiver_down_gives_up_in_time_and_counts_the_loss(receiver, caplog):
    receiver.stop()
    caplog.set_level(logging.WARNING)

    async def main() -> OtlpHandler:
        p = params(receiver.address, flushInterval="1m", timeout="1s")
        env = Env(handler=HANDLER, adapter="otlp", params=p, instances={})
        h = build(env)
        h.handle_tracespan([span(), span(span_id="1" * 16)])
        await env.cancel_background()
        await h.close()
        return h

    h = asyncio.run(asyncio.wait_for(main(), 5))
    assert h.delivery_stats() == {"queued": 2, "sent": 0, "dropped": 2, "failed": 1}
    assert mixerd_messages(caplog) == [
        f"{HANDLER}: final delivery of 2 items failed: OTLP receiver at {receiver.address}: the export "
        "failed (the OTLP exporter logs the gRPC status)"
    ]


def test_a_zipkin_handler_exports_to_the_urls_host_and_port(receiver, caplog):
    caplog.set_level(logging.INFO, logger="mixerd.adapter.zipkin")
    url = f"http://{receiver.address}/api/v2/spans"

    async def scenario(h: OtlpHandler) -> None:
        h.handle_tracespan([span()])
        await until(lambda: len(receiver.spans()) == 1)

    run(read_params(ZipkinParams, {"url": url}), scenario, make=build_zipkin, adapter="zipkin")
    assert caplog.messages == [
        f"{HANDLER}: exporting spans over OTLP/gRPC to {receiver.address} "
        f"(from url {url}; its path is not used)"
    ]


# -- TLS ----------------------------------------------------------------------------------------------------


def _certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate (and its key) for 127.0.0.1, made by openssl."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_with_a_ca_file_and_a_client_certificate(tmp_path: Path):
    server_cert, server_key = _certificate(tmp_path, "receiver")
    client_cert, client_key = _certificate(tmp_path, "mixerd")
    credentials = grpc.ssl_server_credentials(
        [(server_key.read_bytes(), server_cert.read_bytes())],
        root_certificates=client_cert.read_bytes(),
        require_client_auth=True,
    )
    tls = {
        "insecure": False,
        "caFile": str(server_cert),
        "certFile": str(client_cert),
        "keyFile": str(client_key),
    }

    async def scenario(h: OtlpHandler) -> None:
        h.handle_tracespan([span()])
        await until(lambda: len(receiver.spans()) == 1)

    with peer.OtlpReceiver(credentials=credentials) as receiver:
        run(params(receiver.address, tls=tls), scenario)
        assert [view(r.span)["span_id"] for r in receiver.spans()] == [SPAN]


def test_a_tls_file_that_cannot_be_read_fails_the_build(tmp_path: Path):
    missing = tmp_path / "ca.pem"

    async def main() -> None:
        p = params("127.0.0.1:4317", tls={"insecure": False, "caFile": str(missing)})
        env = Env(handler=HANDLER, adapter="otlp", params=p, instances={})
        with pytest.raises(ValueError) as e:
            build(env)
        assert str(e.value) == f"tls.caFile: cannot read {missing}: No such file or directory"
        assert not asyncio.all_tasks() - {asyncio.current_task()}  # nothing started

    asyncio.run(main())


# -- registration and config --------------------------------------------------------------------------------


def test_the_module_registers_both_adapters_through_the_plugin_manager():
    adapters = collect_adapters(make_plugin_manager(builtins=["mixerd_adapters.otlp"], entry_points=False))
    assert sorted(adapters) == ["otlp", "zipkin"]
    assert (adapters["otlp"].templates, adapters["otlp"].params) == (("tracespan",), Params)
    assert (adapters["zipkin"].templates, adapters["zipkin"].params) == (("tracespan",), ZipkinParams)
    assert list(adapters.values()) == mixerd_adapter_info()


def _adapters() -> dict[str, Any]:
    return {**load_adapters(), **{info.name: info for info in mixerd_adapter_info()}}


def _docs_examples() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", (REPO / "docs" / "adapters" / "otlp.md").read_text(), re.S)


def test_the_docs_examples_are_a_valid_config(tmp_path: Path):
    """The otlp example, and the zipkin one (which sends the otlp example's instance)."""
    examples = _docs_examples()
    assert len(examples) == 2
    handlers = []
    for i, example in enumerate(examples):
        (tmp_path / f"{i}.yaml").write_text(example)
        handlers += [d for d in yaml.safe_load_all(example) if d["kind"] == "handler"]
    assert [(h["apiVersion"], h["spec"]["compiledAdapter"]) for h in handlers] == [
        ("config.istio.io/v1alpha2", "otlp"),
        ("config.istio.io/v1alpha2", "zipkin"),
    ]
    snapshot = load_snapshot(tmp_path, _adapters())
    assert sorted(snapshot.handlers) == ["otlp.handler.istio-system", "zipkin.handler.istio-system"]


def test_a_config_whose_instance_has_no_ids_is_rejected(tmp_path: Path):
    (tmp_path / "tracing.yaml").write_text(
        """\
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: zipkin, namespace: istio-system}
spec:
  compiledAdapter: zipkin
  params: {url: "http://zipkin.istio-system:9411/api/v2/spans"}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: spans, namespace: istio-system}
spec:
  compiledTemplate: tracespan
  params: {spanName: request.path | "/"}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: tracing, namespace: istio-system}
spec:
  actions: [{handler: zipkin, instances: [spans]}]
"""
    )
    with pytest.raises(ConfigRejected) as e:
        load_snapshot(tmp_path, _adapters())
    assert [str(error) for error in e.value.errors] == [
        "tracing.yaml: handler 'zipkin.handler.istio-system' .spec.params: instance "
        "'spans.instance.istio-system' sets no traceId and spanId: none of its spans could be exported"
    ]


def test_long_service_names_get_a_resource_without_being_cached() -> None:
    from mixerd_adapters.otlp import spans

    before = spans._cached_resource.cache_info().currsize
    name = "s" * 10_000
    assert spans.resource(name).attributes["service.name"] == name
    assert spans._cached_resource.cache_info().currsize == before
    assert spans.resource("short") is spans.resource("short")
