"""Envoy's rate limit service over real gRPC (the generated stub) against a real mixerd started
on a config folder with a `ratelimitconfig`, on a manual clock so every remaining and reset is exact:

- the N+1th request of a window is OVER_LIMIT; statuses keep the request's order, each with its current
  limit, remaining and time until reset; the next window starts afresh;
- a config change (live reload) changes the limits; a rejected change keeps them;
- malformed requests get INVALID_ARGUMENT naming the field; an unknown domain gets OK;
- the self metrics per domain;
- redisquota: all the descriptors of one request in ONE Redis round trip (INFO commandstats), the same
  counts from two mixerd servers sharing one Redis, and Redis killed or hung: answers within the
  deadline as `failPolicy` says, and counting again once Redis is back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from peers import redis as redis_peers

from mixerd.api.envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime
from mixerd.testing_scenarios import run_mixer

pytestmark = pytest.mark.integration

MS = 1_000_000
S = 1_000 * MS
T0 = 1_699_999_200 * S  # a whole hour
OK, OVER = rls_pb2.RateLimitResponse.OK, rls_pb2.RateLimitResponse.OVER_LIMIT
SECOND, MINUTE = rls_pb2.RateLimitResponse.RateLimit.SECOND, rls_pb2.RateLimitResponse.RateLimit.MINUTE

CONFIG = """\
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {{name: counter, namespace: istio-system}}
spec:
  compiledAdapter: {adapter}
  params: {params}
---
apiVersion: config.istio.io/v1alpha2
kind: ratelimitconfig
metadata: {{name: edge, namespace: istio-system}}
spec:
  domain: edge
  handler: counter
  descriptors:
  - key: remote_address
    rate_limit: {{unit: second, requests_per_unit: {per_second}, name: per-ip}}
  - key: generic_key
    value: api
    descriptors:
    - key: user
      rate_limit: {{unit: minute, requests_per_unit: 5}}
  - key: path
    value: /admin/*
    rate_limit: {{unit: second, requests_per_unit: 0}}
"""


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def write_config(folder: Path, *, adapter: str = "memquota", params: str = "{}", per_second: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratelimit.yaml").write_text(
        CONFIG.format(adapter=adapter, params=params, per_second=per_second)
    )
    return folder


def rls_request(*descriptors: list[tuple[str, str]], domain: str = "edge", hits: int = 0) -> Any:
    request = rls_pb2.RateLimitRequest(domain=domain, hits_addend=hits)
    for entries in descriptors:
        descriptor = request.descriptors.add()
        for key, value in entries:
            descriptor.entries.add(key=key, value=value)
    return request


def statuses(response: Any) -> list[tuple[int, int, int, tuple[int, int, str] | None]]:
    """(code, limit_remaining, duration_until_reset in ms, (requests_per_unit, unit, name)) per status."""
    out = []
    for s in response.statuses:
        limit = s.current_limit
        current = (limit.requests_per_unit, limit.unit, limit.name) if s.HasField("current_limit") else None
        out.append((s.code, s.limit_remaining, s.duration_until_reset.ToNanoseconds() // MS, current))
    return out


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Any, Any, Clock]]:
    """(mixer, stub, clock): mixerd with memquota counting the domain `edge`, on a manual clock."""
    clock = Clock()
    runtime = Runtime(load_adapters(), folder=write_config(tmp_path / "config"), clock=clock)
    with run_mixer(runtime) as mixer, grpc.insecure_channel(mixer.address) as channel:
        yield mixer, rls_pb2_grpc.RateLimitServiceStub(channel), clock


IP = [("remote_address", "10.0.0.1")]
PER_IP = (2, SECOND, "per-ip")


def test_the_request_after_the_limit_is_over_limit_until_the_window_resets(served: Any) -> None:
    _mixer, stub, clock = served
    answers = [stub.ShouldRateLimit(rls_request(IP), timeout=5) for _ in range(3)]
    assert [a.overall_code for a in answers] == [OK, OK, OVER]
    assert [statuses(a) for a in answers] == [
        [(OK, 1, 1000, PER_IP)],
        [(OK, 0, 1000, PER_IP)],
        [(OVER, 0, 1000, PER_IP)],
    ]
    clock.now += 600 * MS
    # 400 ms left: 1 s, as envoyproxy/ratelimit answers (whole seconds; Envoy's X-RateLimit-Reset truncates)
    assert statuses(stub.ShouldRateLimit(rls_request(IP))) == [(OVER, 0, 1000, PER_IP)]
    clock.now += 400 * MS
    answer = stub.ShouldRateLimit(rls_request(IP))
    assert (answer.overall_code, statuses(answer)) == (OK, [(OK, 1, 1000, PER_IP)])


def test_statuses_follow_the_request_order(served: Any) -> None:
    _mixer, stub, clock = served
    clock.now += 30 * S
    answer = stub.ShouldRateLimit(
        rls_request(
            [("generic_key", "api"), ("user", "ann")],
            [("path", "/admin/users")],
            [("unknown", "x")],
            IP,
            hits=2,
        )
    )
    assert answer.overall_code == OVER
    assert statuses(answer) == [
        (OK, 3, 30_000, (5, MINUTE, "")),
        (OVER, 0, 1000, (0, SECOND, "")),  # requests_per_unit 0 blocks
        (OK, 0, 0, None),  # no limit for it
        (OK, 0, 1000, PER_IP),
    ]


def test_a_config_change_changes_the_limits(served: Any, tmp_path: Path) -> None:
    mixer, stub, _clock = served
    assert [statuses(stub.ShouldRateLimit(rls_request(IP)))[0][0] for _ in range(3)] == [OK, OK, OVER]
    write_config(tmp_path / "config", per_second=10)
    assert mixer.run(mixer.runtime.reload()) is True
    # The counter is the same (domain, entries and window did not change): 2 of the new 10 are used.
    assert statuses(stub.ShouldRateLimit(rls_request(IP))) == [(OK, 7, 1000, (10, SECOND, "per-ip"))]
    (tmp_path / "config" / "ratelimit.yaml").write_text("kind: [broken")
    assert mixer.run(mixer.runtime.reload()) is False
    assert statuses(stub.ShouldRateLimit(rls_request(IP))) == [(OK, 6, 1000, (10, SECOND, "per-ip"))]


def test_a_domain_no_config_has_is_answered_ok(served: Any) -> None:
    mixer, stub, _clock = served
    answer = stub.ShouldRateLimit(rls_request(IP, [("a", "b")], domain="internal"))
    assert answer.overall_code == OK
    assert statuses(answer) == [(OK, 0, 0, None), (OK, 0, 0, None)]
    assert mixer.metric('mixerd_ratelimit_domain_not_found_total{domain="internal"}') == 1


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (rls_request(IP, domain=""), "domain: must not be empty"),
        (rls_request(), "descriptors: must not be empty (send at least one descriptor)"),
        (rls_request(IP, []), "descriptors[1].entries: must not be empty"),
        (rls_request([("", "x")]), "descriptors[0].entries[0].key: must not be empty"),
    ],
    ids=["no-domain", "no-descriptors", "empty-descriptor", "empty-key"],
)
def test_a_malformed_request_is_invalid_argument(served: Any, request_: Any, message: str) -> None:
    _mixer, stub, _clock = served
    with pytest.raises(grpc.RpcError) as e:
        stub.ShouldRateLimit(request_, timeout=5)
    assert (e.value.code(), e.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)


def test_bytes_that_are_not_a_request_are_invalid_argument(served: Any) -> None:
    mixer, _stub, _clock = served
    with grpc.insecure_channel(mixer.address) as channel:
        call = channel.unary_unary("/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit")
        with pytest.raises(grpc.RpcError) as e:
            call(b"\xff\xff\xff", timeout=5)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details().startswith("malformed RateLimitRequest: ")


def test_self_metrics_per_domain(served: Any) -> None:
    mixer, stub, _clock = served
    for _ in range(3):
        stub.ShouldRateLimit(rls_request(IP))
    stub.ShouldRateLimit(rls_request([("path", "/admin/x")], hits=4))
    with pytest.raises(grpc.RpcError):
        stub.ShouldRateLimit(rls_request())
    metrics = mixer.metrics()
    edge = 'domain="edge"'
    assert {k: v for k, v in metrics.items() if k.startswith("mixerd_ratelimit_") and edge in k} == {
        # limit 2, near from 1: within_limit every hit of the two calls within it, near_limit the one past 1
        f'mixerd_ratelimit_total_hits_total{{descriptor="remote_address",{edge}}}': 3,
        f'mixerd_ratelimit_within_limit_total{{descriptor="remote_address",{edge}}}': 2,
        f'mixerd_ratelimit_near_limit_total{{descriptor="remote_address",{edge}}}': 1,
        f'mixerd_ratelimit_over_limit_total{{descriptor="remote_address",{edge}}}': 1,
        f'mixerd_ratelimit_total_hits_total{{descriptor="path_/admin/*",{edge}}}': 4,
        f'mixerd_ratelimit_over_limit_total{{descriptor="path_/admin/*",{edge}}}': 4,
        f'mixerd_ratelimit_requests_total{{code="OK",{edge}}}': 2,
        f'mixerd_ratelimit_requests_total{{code="OVER_LIMIT",{edge}}}': 2,
        f'mixerd_ratelimit_requests_total{{code="INVALID_ARGUMENT",{edge}}}': 1,
    }


def test_the_service_is_listed_by_reflection(served: Any) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    mixer, _stub, _clock = served
    with grpc.insecure_channel(mixer.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        [answer] = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for s in answer.list_services_response.service}
    assert "envoy.service.ratelimit.v3.RateLimitService" in names


# -- redisquota ------------------------------------------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Any]:
    with redis_peers.RedisServer(tmp_path / "redis") as server:
        yield server


#: What the quota script runs inside Redis (commandstats counts those too).
SCRIPT_COMMANDS = {"get", "set", "hmget", "hset", "pexpire", "lindex", "lpop", "rpush", "lset"}


def test_all_descriptors_of_a_request_cost_one_redis_round_trip(redis_server: Any, tmp_path: Path) -> None:
    params = f"{{redisServerUrl: '{redis_server.url}', exhaustedCache: false}}"
    folder = write_config(tmp_path / "config", adapter="redisquota", params=params, per_second=1000)
    runtime = Runtime(load_adapters(), folder=folder, clock=Clock())
    with run_mixer(runtime) as mixer, grpc.insecure_channel(mixer.address) as channel:
        stub = rls_pb2_grpc.RateLimitServiceStub(channel)
        stub.ShouldRateLimit(rls_request(IP), timeout=5)  # the handler connects on its first request
        redis_server.reset_stats()
        for i in range(20):
            user = [("generic_key", "api"), ("user", f"u{i % 4}")]
            other = [("remote_address", f"10.0.0.{i % 3}")]
            answer = stub.ShouldRateLimit(rls_request(IP, user, other, [("path", "/admin/x")]), timeout=5)
            assert [s.code for s in answer.statuses] == [OK, OK, OK, OVER]
    stats = redis_server.commandstats()
    assert stats.pop("evalsha") == 20  # one script call per request, for its three counted descriptors
    assert set(stats) <= SCRIPT_COMMANDS, stats


def test_two_servers_sharing_redis_share_the_counts(redis_server: Any, tmp_path: Path) -> None:
    params = f"{{redisServerUrl: '{redis_server.url}'}}"
    folder = write_config(tmp_path / "config", adapter="redisquota", params=params, per_second=3)
    clock = Clock()
    with (
        run_mixer(Runtime(load_adapters(), folder=folder, clock=clock)) as a,
        run_mixer(Runtime(load_adapters(), folder=folder, clock=clock)) as b,
        grpc.insecure_channel(a.address) as ca,
        grpc.insecure_channel(b.address) as cb,
    ):
        stubs = [rls_pb2_grpc.RateLimitServiceStub(c) for c in (ca, cb, ca, cb)]
        codes = [stub.ShouldRateLimit(rls_request(IP), timeout=5).overall_code for stub in stubs]
    assert codes == [OK, OK, OK, OVER]


@pytest.mark.parametrize("policy", ["open", "closed"])
def test_redis_killed_or_hung_answers_within_the_deadline_by_fail_policy(tmp_path: Path, policy: str) -> None:
    peer = redis_peers.RedisServer(tmp_path / "redis")
    params = f"{{redisServerUrl: '{peer.url}', failPolicy: {policy}, timeout: 200ms}}"
    folder = write_config(tmp_path / "config", adapter="redisquota", params=params, per_second=1000)
    failed = OK if policy == "open" else OVER
    with (
        peer,
        run_mixer(Runtime(load_adapters(), folder=folder)) as mixer,
        grpc.insecure_channel(mixer.address) as channel,
    ):
        stub = rls_pb2_grpc.RateLimitServiceStub(channel)

        def ask(user: str, timeout: float = 1.0) -> tuple[int, int]:
            """(overall code, limit_remaining) for one request (remaining 998 or so: Redis counted it)."""
            answer = stub.ShouldRateLimit(rls_request([("remote_address", user)]), timeout=timeout)
            return answer.overall_code, answer.statuses[0].limit_remaining

        assert ask("ann") == (OK, 999)
        peer.kill()
        for user in ("ann", "bob", "cid"):
            started = time.monotonic()
            assert ask(user, timeout=0.5) == (failed, 0)
            assert time.monotonic() - started < 0.5
        peer.start()  # empty, on the same port; mixerd is not restarted
        redis_peers.wait_until(lambda: ask("dan") == (OK, 999), 5, "rate limits counted by Redis again")
        peer.pause()  # hung: the port is open, nothing answers
        try:
            started = time.monotonic()
            assert ask("eve", timeout=0.5) == (failed, 0)
            assert time.monotonic() - started < 0.45  # the handler's 200ms, well inside the deadline
        finally:
            peer.resume()
        redis_peers.wait_until(lambda: ask("fay") == (OK, 999), 5, "rate limits counted by Redis again")
        errors = mixer.metric('mixerd_ratelimit_backend_errors_total{domain="edge"}')
    assert errors >= 4
