"""Whatever a caller sends, every wire entry point answers with a precise status and the server lives on.

Each test drives one entry point of a real mixerd, serving Istio's telemetry rules plus a policy that
reaches every check variety, with messages hypothesis draws from the request type's descriptor
(tests/protofuzz.py): any mix of fields, nested messages, open enums, hostile strings, whole-range
integers, and truncated or mangled bytes. An answer is either OK or a documented refusal, never
"mixerd internal error" or UNKNOWN, and the server still answers a health check afterwards.

A longer run of the same properties: `MIXERD_FUZZ_EXAMPLES=5000 pytest tests/integration/test_fuzz.py`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protofuzz import messages, wire

from mixerd.api.envoy.service.accesslog.v3 import als_pb2
from mixerd.api.envoy.service.auth.v3 import external_auth_pb2
from mixerd.api.envoy.service.ratelimit.v3 import rls_pb2
from mixerd.api.mixer.v1 import attributes_pb2, mixer_pb2
from mixerd.attribute import encode_attributes, encode_report
from mixerd.testing import typical_http_bag

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("MIXERD_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

POLICY = """\
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: deny, namespace: istio-system}
spec: {compiledAdapter: denier, params: {status: {code: 7, message: go away}}}
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: networks, namespace: istio-system}
spec:
  compiledAdapter: listchecker
  params: {overrides: [10.0.0.0/8], entryType: IP_ADDRESSES, blacklist: true}
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: quota, namespace: istio-system}
spec:
  compiledAdapter: memquota
  params: {quotas: [{name: fuzzquota.instance.istio-system, maxAmount: 1000, validDuration: 1s}]}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: nothing, namespace: istio-system}
spec: {compiledTemplate: checknothing}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: sourceip, namespace: istio-system}
spec: {compiledTemplate: listentry, params: {value: source.ip | ip("0.0.0.0")}}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: fuzzquota, namespace: istio-system}
spec:
  compiledTemplate: quota
  params:
    dimensions:
      user: request.headers["x-user"] | "anonymous"
      path: request.path | "/"
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: deny, namespace: istio-system}
spec:
  match: request.headers["x-user"].matches("^blocked") && request.path.startsWith("/")
  actions: [{handler: deny, instances: [nothing]}]
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: networks, namespace: istio-system}
spec:
  match: source.ip == ip("10.1.2.3") || destination.service.host.endsWith(".svc.cluster.local")
  actions: [{handler: networks, instances: [sourceip]}]
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: quota, namespace: istio-system}
spec:
  actions: [{handler: quota, instances: [fuzzquota]}]
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: ratelimit-counter, namespace: istio-system}
spec: {compiledAdapter: memquota}
---
apiVersion: config.istio.io/v1alpha2
kind: ratelimitconfig
metadata: {name: edge, namespace: istio-system}
spec:
  domain: edge
  handler: ratelimit-counter
  descriptors:
  - key: remote_address
    rate_limit: {unit: second, requests_per_unit: 10, name: per-ip}
  - key: path
    value: /api/*
    shadow_mode: true
    rate_limit: {unit: minute, requests_per_unit: 100}
  - key: generic_key
    value: api
    descriptors:
    - key: user
      rate_limits:
      - {unit: second, requests_per_unit: 5, name: burst}
      - {unit: hour, requests_per_unit: 1000, algorithm: ROLLING_WINDOW, bucket_duration: 1m}
    - key: user
      value: partner
      rate_limit: {unlimited: true, replaces: [{name: per-ip}]}
"""


@pytest.fixture
def server(
    start_mixer_server: Callable[..., Any], bundled_rules: Callable[[str], Path], tmp_path: Path
) -> Any:
    """mixerd with Istio's telemetry rules (prometheus on a free port) and POLICY."""
    folder = bundled_rules("istio")
    (folder / "policy.yaml").write_text(POLICY)
    return start_mixer_server(config=str(folder), prometheus_port=0)


def _call(address: str, path: str, payload: bytes) -> tuple[grpc.StatusCode, str]:
    with grpc.insecure_channel(address) as channel:
        try:
            channel.unary_unary(path)(payload, timeout=20)
        except grpc.RpcError as e:
            return e.code(), e.details() or ""
        return grpc.StatusCode.OK, ""


def _alive(address: str) -> None:
    with grpc.insecure_channel(address) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=20)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def _assert_clean(code: grpc.StatusCode, details: str, allowed: set[grpc.StatusCode]) -> None:
    assert code in allowed, (code, details)
    assert not details.startswith("mixerd internal error"), details


# -- istio.mixer.v1.Mixer ---------------------------------------------------------------------------------

#: Mixer's answers, precise and documented (mixer/server/mixer_api.py): OK (a Check's denial travels in an
#: OK response); INVALID_ARGUMENT for a malformed request or bag; INTERNAL for more global words than
#: mixerd knows (Mixer's text) or for a check rule that failed to evaluate; UNKNOWN (Mixer's code) for
#: report instances that failed. As in Mixer, an attribute whose value does not have its manifest type
#: fails only the expressions that read it ("error converting value to ...").
_MIXER_REFUSALS = {
    grpc.StatusCode.INVALID_ARGUMENT: ("",),
    grpc.StatusCode.INTERNAL: (
        "inconsistent global dictionary versions used",
        "performing check operation failed: ",
    ),
    grpc.StatusCode.UNKNOWN: ("performing report operation failed: ",),
}


def _assert_mixer(code: grpc.StatusCode, details: str) -> None:
    _assert_clean(code, details, {grpc.StatusCode.OK, *_MIXER_REFUSALS})
    if code != grpc.StatusCode.OK:
        assert details.startswith(_MIXER_REFUSALS[code]), (code, details)


#: Bags a proxy could send: typical ones with some attributes replaced by hostile values.
_HOSTILE = st.sampled_from(
    [
        "",
        "\x00",
        "blocked\x00",
        "x" * 10_000,
        "(a+)+$",
        "1.2.3.4\x00",
        "\udfff".encode("utf-8", "surrogatepass"),
    ]
)
_VALUES = st.one_of(
    st.text(max_size=30),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True),
    st.booleans(),
    st.binary(max_size=20),
    st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3),
)


@st.composite
def _bags(draw: st.DrawFn) -> dict[str, Any]:
    bag = dict(typical_http_bag(draw(st.integers(0, 100))))
    for name in draw(st.lists(st.sampled_from(sorted(bag)), max_size=5)):
        value = draw(_HOSTILE | _VALUES)
        if isinstance(value, bytes) and name != "source.ip":
            continue  # a bytes value where the manifest says STRING is a type error, tried elsewhere
        bag[name] = value
    return bag


@FUZZ
@given(payload=wire(mixer_pb2.CheckRequest))
def test_check_any_request(server: Any, payload: bytes) -> None:
    _assert_mixer(*_call(server.address, "/istio.mixer.v1.Mixer/Check", payload))
    _alive(server.address)


@FUZZ
@given(payload=wire(mixer_pb2.ReportRequest, depth=3))
def test_report_any_request(server: Any, payload: bytes) -> None:
    _assert_mixer(*_call(server.address, "/istio.mixer.v1.Mixer/Report", payload))
    _alive(server.address)


@FUZZ
@given(
    bag=_bags(),
    quotas=st.dictionaries(st.sampled_from(["fuzzquota", "other", ""]), st.integers(0, 2**63 - 1)),
)
def test_check_bags_a_proxy_could_send(server: Any, bag: dict[str, Any], quotas: dict[str, int]) -> None:
    try:
        attributes = encode_attributes(bag)
    except (TypeError, ValueError):
        return  # not encodable by a proxy either
    request = mixer_pb2.CheckRequest(attributes=attributes, deduplication_id="fuzz")
    for name, amount in quotas.items():
        request.quotas[name].amount = amount
    _assert_mixer(*_call(server.address, "/istio.mixer.v1.Mixer/Check", request.SerializeToString()))
    _alive(server.address)


@FUZZ
@given(bags=st.lists(_bags(), min_size=1, max_size=4), delta=st.booleans())
def test_report_bags_a_proxy_could_send(server: Any, bags: list[dict[str, Any]], delta: bool) -> None:
    try:
        request = encode_report(bags, delta=delta)
    except (TypeError, ValueError):
        return
    _assert_mixer(*_call(server.address, "/istio.mixer.v1.Mixer/Report", request.SerializeToString()))
    _alive(server.address)


@FUZZ
@given(bag=messages(attributes_pb2.CompressedAttributes, depth=2))
def test_check_compressed_bags_with_any_word_indices(server: Any, bag: Any) -> None:
    request = mixer_pb2.CheckRequest(attributes=bag)
    _assert_mixer(*_call(server.address, "/istio.mixer.v1.Mixer/Check", request.SerializeToString()))
    _alive(server.address)


# -- Envoy's services -------------------------------------------------------------------------------------


@FUZZ
@given(payload=wire(external_auth_pb2.CheckRequest, depth=5))
def test_ext_authz_any_request(server: Any, payload: bytes) -> None:
    code, details = _call(server.address, "/envoy.service.auth.v3.Authorization/Check", payload)
    # A verdict, allow or deny, is an OK call; a field that cannot be an attribute is INVALID_ARGUMENT;
    # a check rule that fails to evaluate is INTERNAL with Mixer's text (mixer/server/envoy/authz.py).
    _assert_clean(
        code, details, {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL}
    )
    if code == grpc.StatusCode.INTERNAL:
        assert details.startswith("performing check operation failed: "), details
    _alive(server.address)


_DESCRIPTOR_KEYS = st.sampled_from(["remote_address", "path", "generic_key", "user", "tenant", ""])
_DESCRIPTOR_VALUES = st.sampled_from(["10.0.0.1", "/api/books", "api", "partner", "bob", "", "\x00"])


@st.composite
def _rate_limit_requests(draw: st.DrawFn) -> bytes:
    """Mostly requests for the configured domain with plausible descriptors, the rest anything."""
    if draw(st.booleans()):
        return draw(wire(rls_pb2.RateLimitRequest))
    request = rls_pb2.RateLimitRequest(
        domain=draw(st.sampled_from(["edge", "unknown", ""])), hits_addend=draw(st.integers(0, 2**32 - 1))
    )
    for _ in range(draw(st.integers(0, 4))):
        descriptor = request.descriptors.add()
        for _ in range(draw(st.integers(0, 3))):
            descriptor.entries.add(key=draw(_DESCRIPTOR_KEYS), value=draw(_DESCRIPTOR_VALUES))
        if draw(st.booleans()):
            descriptor.limit.requests_per_unit = draw(st.integers(0, 2**32 - 1))
            descriptor.limit.unit = draw(st.integers(-1, 9))
        if draw(st.booleans()):
            descriptor.hits_addend.value = draw(st.integers(0, 2**64 - 1))
    return request.SerializeToString()


@FUZZ
@given(payload=_rate_limit_requests())
def test_should_rate_limit_any_request(server: Any, payload: bytes) -> None:
    path = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit"
    code, details = _call(server.address, path, payload)
    # OK carries OK or OVER_LIMIT; a malformed request is INVALID_ARGUMENT naming the field.
    _assert_clean(code, details, {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT})
    _alive(server.address)


@FUZZ
@given(stream=st.lists(wire(als_pb2.StreamAccessLogsMessage, depth=5), min_size=1, max_size=4))
def test_access_log_streams_of_anything(
    server: Any, stream: list[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    with grpc.insecure_channel(server.address) as channel:
        call = channel.stream_unary("/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs")
        answer = call(iter(stream), timeout=20)
    # Nothing a proxy sends ends its stream: bad messages and entries are counted and skipped, and the
    # (empty) answer comes when the client closes its side.
    assert als_pb2.StreamAccessLogsResponse.FromString(answer) == als_pb2.StreamAccessLogsResponse()
    _alive(server.address)
    # Skipped, not crashed: an exception in mapping would be logged with its traceback.
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
