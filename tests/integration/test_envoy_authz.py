"""envoy.service.auth.v3.Authorization/Check over real gRPC, with the generated stub: verdicts from a
config (tests/data/envoy/authz/policy), error statuses, the verdict cache and its metrics, reloads."""

from __future__ import annotations

import shutil
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from mixerd.api.envoy.config.core.v3 import base_pb2
from mixerd.api.envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from mixerd.attribute import AttributeBag
from mixerd.dispatch import CheckOutcome, DispatchError, SimpleDispatcher
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime
from mixerd.testing_scenarios import RunningMixer, run_mixer
from mixerd.testing_scenarios.server import parse_metrics

pytestmark = pytest.mark.integration

POLICY = Path(__file__).resolve().parents[1] / "data" / "envoy" / "authz" / "policy"
CHECK = "/envoy.service.auth.v3.Authorization/Check"
OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
APPEND = base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD

CheckRequest = external_auth_pb2.CheckRequest


def check_request(
    path: str = "/api/books",
    headers: dict[str, str] | None = None,
    *,
    extensions: dict[str, str] | None = None,
    request_id: str = "req-1",
) -> Any:
    request = CheckRequest()
    attributes = request.attributes
    attributes.source.address.socket_address.address = "10.0.0.7"
    attributes.source.address.socket_address.port_value = 40000
    attributes.destination.address.socket_address.address = "10.0.0.1"
    attributes.destination.address.socket_address.port_value = 8080
    http = attributes.request.http
    http.method = "GET"
    http.path = path
    http.host = "books"
    http.headers.update({":path": path, "x-request-id": request_id, **(headers or {})})
    attributes.context_extensions.update(extensions or {})
    return request


def headers(options: Any) -> list[tuple[str, str, int]]:
    return [(o.header.key, o.header.value, o.append_action) for o in options]


def call(address: str, request: Any, timeout: float = 10) -> Any:
    with grpc.insecure_channel(address) as channel:
        return external_auth_pb2_grpc.AuthorizationStub(channel).Check(request, timeout=timeout)


def rpc_error(address: str, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(address, request)
    return info.value


@pytest.fixture
def mixer() -> Iterator[RunningMixer]:
    """mixerd serving the test policy, with the verdict cache on (its default size)."""
    with run_mixer(Runtime(load_adapters(), folder=POLICY)) as running:
        yield running


# -- verdicts -----------------------------------------------------------------------------------------


def test_an_allowed_request_gets_the_rules_header_operations(mixer: RunningMixer) -> None:
    response = call(mixer.address, check_request(headers={"x-user": "alice", "x-internal": "secret"}))
    assert response.status.code == 0
    ok = response.ok_response
    assert headers(ok.headers) == [("x-mixer-user", "alice", OVERWRITE), ("x-tag", "checked", APPEND)]
    assert list(ok.headers_to_remove) == ["x-internal"]
    assert headers(ok.response_headers_to_add) == [("x-served-by", "mixerd", OVERWRITE)]


def test_context_extensions_are_an_attribute(mixer: RunningMixer) -> None:
    response = call(mixer.address, check_request("/web", extensions={"tenant": "gold"}))
    assert headers(response.ok_response.headers) == [("x-tenant", "gold", OVERWRITE)]


def test_a_denial_with_a_direct_response(mixer: RunningMixer) -> None:
    response = call(mixer.address, check_request("/private"))
    assert (response.status.code, response.status.message) == (16, "login.handler.istio-system:log in first")
    denied = response.denied_response
    assert (denied.status.code, denied.body) == (302, "redirecting to the login page")
    assert headers(denied.headers) == [
        ("Location", "https://login.example.com/", OVERWRITE),
        ("Set-Cookie", "seen=1", APPEND),
        ("Set-Cookie", "next=/private", APPEND),
    ]


@pytest.mark.parametrize(
    ("path", "user", "code", "message", "http_status"),
    [
        ("/api/books", "blocked", 7, "blocked.handler.istio-system:this user is blocked", 403),
        ("/busy", "alice", 8, "busy.handler.istio-system:slow down", 429),
    ],
)
def test_a_denial_maps_its_code_to_an_http_status(
    mixer: RunningMixer, path: str, user: str, code: int, message: str, http_status: int
) -> None:
    response = call(mixer.address, check_request(path, {"x-user": user}))
    assert (response.status.code, response.status.message) == (code, message)
    denied = response.denied_response
    assert (denied.status.code, denied.body, len(denied.headers)) == (http_status, message, 0)


def test_an_adapter_failure_is_an_internal_error(mixer: RunningMixer) -> None:
    error = rpc_error(mixer.address, check_request("/fail"))
    assert error.code() == grpc.StatusCode.INTERNAL
    prefix = "performing check operation failed: busy.handler.istio-system: instance caller-name.instance"
    assert error.details().startswith(prefix)
    assert "source.name" in error.details()
    # failures are never cached: the next call fails the same way
    assert rpc_error(mixer.address, check_request("/fail")).code() == grpc.StatusCode.INTERNAL
    assert mixer.metric('mixerd_authz_requests_total{outcome="error"}') == 2


# -- bad input ------------------------------------------------------------------------------------------


def test_bytes_that_are_not_a_check_request_are_invalid_argument(mixer: RunningMixer) -> None:
    with grpc.insecure_channel(mixer.address) as channel, pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(CHECK)(b"\x0a\xff\xff", timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith("malformed CheckRequest: ")


@pytest.mark.parametrize("text", ["mixer.local", "10.0.0.1\x00"])
def test_an_address_that_is_not_an_ip_is_invalid_argument(
    mixer: RunningMixer, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    request = check_request()
    request.attributes.destination.address.socket_address.address = text
    error = rpc_error(mixer.address, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (
        f"attributes.destination.address.socket_address.address: {text!r} is not an IP address"
    )
    assert mixer.metric('mixerd_authz_requests_total{outcome="invalid"}') == 1
    assert not [r for r in caplog.records if r.exc_info]  # bad input, not a traceback


# -- the dispatch it runs -------------------------------------------------------------------------------


class Recording(SimpleDispatcher):
    """Reads x-user (so verdicts are cached per user), denies "blocked", records each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float | None]] = []
        self.preconditions = 0

    async def check(
        self, bag: AttributeBag, quotas: Any, dedup_id: str, timeout: float | None = None
    ) -> CheckOutcome:
        self.calls.append((dedup_id, timeout))
        return await super().check(bag, quotas, dedup_id, timeout)

    async def precondition(self, bag: AttributeBag) -> CheckOutcome:
        self.preconditions += 1
        if bag.map_get("request.headers", "x-user") == "blocked":
            return CheckOutcome(status_code=7, message="no")
        return CheckOutcome()


class Failing(SimpleDispatcher):
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def precondition(self, bag: AttributeBag) -> CheckOutcome:
        raise self.error


def test_the_dispatch_gets_the_request_id_and_the_callers_deadline(start_mixer_server: Any) -> None:
    dispatcher = Recording()
    server = start_mixer_server(dispatcher)
    call(server.address, check_request(request_id="abc-123"), timeout=10)
    [(dedup_id, timeout)] = dispatcher.calls
    assert dedup_id == "abc-123"
    assert timeout is not None and 0 < timeout < 11  # gRPC rounds the deadline it sends up a little


def test_a_dispatch_error_is_internal_with_its_message(start_mixer_server: Any) -> None:
    server = start_mixer_server(Failing(DispatchError("h.handler.ns: no answer within 0.2s")))
    error = rpc_error(server.address, check_request())
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == "performing check operation failed: h.handler.ns: no answer within 0.2s"


def test_an_unexpected_exception_is_internal_and_logged(
    start_mixer_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_mixer_server(Failing(RuntimeError("exploded")))
    error = rpc_error(server.address, check_request())
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == "mixerd internal error in ext_authz Check (RuntimeError); see the server log"
    [record] = [r for r in caplog.records if r.name == "mixerd.server.envoy.authz"]
    assert record.exc_info is not None and "exploded" in str(record.exc_info[1])


def test_reflection_describes_the_service(start_mixer_server: Any) -> None:
    server = start_mixer_server(Recording())
    with grpc.insecure_channel(server.address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        assert "envoy.service.auth.v3.Authorization" in database.get_services()
        service = descriptor_pool.DescriptorPool(database).FindServiceByName(
            "envoy.service.auth.v3.Authorization"
        )
        assert [m.name for m in service.methods] == ["Check"]


# -- the verdict cache ------------------------------------------------------------------------------


def scrape(server: Any) -> dict[str, float]:
    with urllib.request.urlopen(server.monitoring_url + "/metrics", timeout=10) as answer:
        return parse_metrics(answer.read().decode())


def verdicts(address: str, users: Sequence[str]) -> list[int]:
    return [
        call(address, check_request(headers={"x-user": u}, request_id=f"r{i}")).status.code
        for i, u in enumerate(users)
    ]


def test_repeated_requests_are_answered_from_the_cache(start_mixer_server: Any) -> None:
    dispatcher = Recording()
    server = start_mixer_server(dispatcher)
    assert verdicts(server.address, ["alice", "alice", "blocked", "alice", "blocked", "bob"]) == [
        0,
        0,
        7,
        0,
        7,
        0,
    ]
    assert dispatcher.preconditions == 3  # alice, blocked, bob: one dispatch per distinct x-user
    metrics = scrape(server)
    assert metrics["mixerd_authz_cache_hits_total"] == 3
    assert metrics["mixerd_authz_cache_misses_total"] == 3
    assert metrics["mixerd_authz_cache_entries"] == 3
    assert metrics['mixerd_authz_requests_total{outcome="allowed"}'] == 4
    assert metrics['mixerd_authz_requests_total{outcome="denied"}'] == 2


def test_a_cached_answer_is_the_same_answer(mixer: RunningMixer) -> None:
    request = check_request(headers={"x-user": "alice", "x-internal": "secret"})
    first = call(mixer.address, request)
    again = call(
        mixer.address, check_request(headers={"x-user": "alice", "x-internal": "secret"}, request_id="r2")
    )
    assert again == first
    assert mixer.metric("mixerd_authz_cache_hits_total") == 1


def test_the_cache_can_be_turned_off(start_mixer_server: Any) -> None:
    dispatcher = Recording()
    server = start_mixer_server(dispatcher, authz_cache_size=0)
    assert verdicts(server.address, ["alice", "alice", "alice"]) == [0, 0, 0]
    assert dispatcher.preconditions == 3
    metrics = scrape(server)
    assert not [name for name in metrics if name.startswith("mixerd_authz_cache")]
    assert metrics['mixerd_authz_requests_total{outcome="allowed"}'] == 3


def test_a_small_cache_evicts_the_least_recently_used(start_mixer_server: Any) -> None:
    dispatcher = Recording()
    server = start_mixer_server(dispatcher, authz_cache_size=2)
    verdicts(server.address, ["a", "b", "c", "a"])  # c evicts a, so a is dispatched again
    assert dispatcher.preconditions == 4
    metrics = scrape(server)
    assert metrics['mixerd_authz_cache_evictions_total{reason="size"}'] == 2
    assert metrics["mixerd_authz_cache_entries"] == 2


def test_the_cache_keeps_within_its_byte_budget(start_mixer_server: Any) -> None:
    """Distinct 10 KB x-user headers fill a 1 MiB budget and no more; a 100 KB one is answered, not kept."""
    dispatcher = Recording()
    server = start_mixer_server(dispatcher, authz_cache_bytes=1 << 20)
    users = [f"{i:04d}" + "u" * 10_000 for i in range(200)]
    assert verdicts(server.address, users) == [0] * 200
    metrics = scrape(server)
    assert 0 < metrics["mixerd_authz_cache_bytes"] <= 1 << 20
    assert metrics["mixerd_authz_cache_entries"] < 110
    assert metrics['mixerd_authz_cache_evictions_total{reason="size"}'] > 90
    huge = "blocked" + " " * 100_000
    assert verdicts(server.address, ["blocked", huge, huge]) == [7, 0, 0]  # not "blocked": the value differs
    assert dispatcher.preconditions == 203  # the huge header was dispatched each time
    assert scrape(server)["mixerd_authz_cache_too_large_total"] == 2


_DENY_ALICE = """\
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: no-alice}
spec: {compiledAdapter: denier, params: {status: {code: 7, message: not alice}}}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: nothing}
spec: {compiledTemplate: checknothing}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: no-alice}
spec:
  match: request.headers["x-user"] == "alice"
  actions: [{handler: no-alice, instances: [nothing]}]
"""


def test_a_reload_never_serves_a_verdict_of_the_old_config(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    shutil.copytree(POLICY, folder)
    with run_mixer(Runtime(load_adapters(), folder=folder)) as mixer:
        alice = check_request(headers={"x-user": "alice"})
        assert [call(mixer.address, alice).status.code for _ in range(2)] == [0, 0]
        assert mixer.metric("mixerd_authz_cache_hits_total") == 1

        (folder / "policy.yaml").write_text(_DENY_ALICE)
        assert mixer.run(mixer.runtime.reload())

        response = call(mixer.address, alice)
        assert (response.status.code, response.denied_response.status.code) == (7, 403)
        assert mixer.metric('mixerd_authz_cache_evictions_total{reason="reload"}') >= 1
        assert call(mixer.address, alice).status.code == 7  # and the new verdict is cached in turn
        assert mixer.metric("mixerd_authz_cache_hits_total") == 2


def test_a_bad_request_is_refused_even_when_a_verdict_would_match(start_mixer_server: Any) -> None:
    server = start_mixer_server(Recording())
    call(server.address, check_request(headers={"x-user": "alice"}))  # cached: it read only x-user
    request = check_request(headers={"x-user": "alice"})
    request.attributes.source.address.socket_address.address = "10.0.0.999"
    assert rpc_error(server.address, request).code() == grpc.StatusCode.INVALID_ARGUMENT


class Generating(SimpleDispatcher):
    """Fills source.namespace in the way an attribute generator does, and lets only "generated" pass."""

    def __init__(self) -> None:
        self.preconditions = 0

    async def precondition(self, bag: AttributeBag) -> CheckOutcome:
        self.preconditions += 1
        bag.merge_under({"source.namespace": "generated"})
        namespace = bag.get("source.namespace")
        return CheckOutcome() if namespace == "generated" else CheckOutcome(status_code=7, message=namespace)


def test_a_verdict_on_generated_attributes_is_not_used_when_the_request_carries_them(
    start_mixer_server: Any,
) -> None:
    dispatcher = Generating()
    server = start_mixer_server(dispatcher)
    assert call(server.address, check_request()).status.code == 0
    assert call(server.address, check_request()).status.code == 0  # from the cache
    assert dispatcher.preconditions == 1
    request = check_request()
    request.attributes.source.principal = "spiffe://cluster.local/ns/intruder/sa/x"  # source.namespace
    response = call(server.address, request)
    assert (response.status.code, response.status.message) == (7, "intruder")
    assert dispatcher.preconditions == 2
