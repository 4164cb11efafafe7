"""envoyproxy/ratelimit's own config files (`--ratelimit-config`) served unchanged over real gRPC, on a
manual clock so every answer is exact:

- rules/examples/ratelimit-upstream (files shaped like envoyproxy/ratelimit's examples): its README's
  table is what the service answers, and its stats have envoyproxy/ratelimit's names on /metrics;
- a file that changes is reloaded; a bad change is rejected whole, logged with file and path and
  counted, and the last good config serves on; a domain also in a `ratelimitconfig` is refused;
- the domains counted by a redisquota handler (`--ratelimit-handler`): two mixerd share the counts;
- the settings envoyproxy/ratelimit has as variables: response headers, dynamic metadata, global
  shadow mode;
- the stats on a real statsd daemon under envoyproxy/ratelimit's names;
- `mixerd serve --ratelimit-config` itself: a missing folder exits 2, bad files exit 1 naming them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from peers import receivers as peers
from peers import redis as redis_peers

from mixerd.api.envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc
from mixerd.bundled import rules_folder
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime
from mixerd.server.app import READY_PATTERN, ConfigError, start
from mixerd.settings import Settings
from mixerd.testing_scenarios import run_mixer

pytestmark = pytest.mark.integration

S = 1_000_000_000
T0 = 1_700_006_400 * S  # the start of a day
OK, OVER = rls_pb2.RateLimitResponse.OK, rls_pb2.RateLimitResponse.OVER_LIMIT
CODES = {OK: "OK", OVER: "OVER_LIMIT"}
EXAMPLE = rules_folder("examples") / "ratelimit-upstream"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def rls_request(domain: str, *descriptors: str, hits: int = 0) -> Any:
    """A request from descriptors written "k=v, k2=v2"."""
    request = rls_pb2.RateLimitRequest(domain=domain, hits_addend=hits)
    for text in descriptors:
        descriptor = request.descriptors.add()
        for entry in text.split(", "):
            key, value = entry.split("=", 1)
            descriptor.entries.add(key=key, value=value)
    return request


def described(response: Any) -> tuple[str, str]:
    """(overall code, statuses) in the README's words."""

    def one(s: Any) -> str:
        code = CODES[s.code]
        if s.limit_remaining == 2**32 - 1 and not s.HasField("current_limit"):
            return f"{code}, unlimited"
        if not s.HasField("current_limit"):
            return f"{code}, no limit"
        return f"{code}, {s.limit_remaining} left"

    return CODES[response.overall_code], " + ".join(one(s) for s in response.statuses)


def serve(runtime_folder: Path, limits: Path, clock: Clock, **settings: Any) -> Any:
    """run_mixer on an (empty or given) --config folder and `limits` as --ratelimit-config."""
    runtime = Runtime(load_adapters(), folder=runtime_folder, clock=clock)
    return run_mixer(runtime, ratelimit_config=str(limits), **settings)


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the bundled example (so a test never touches the installed files)."""
    return Path(shutil.copytree(EXAMPLE, tmp_path / "ratelimit"))


@pytest.fixture
def empty_config(tmp_path: Path) -> Path:
    folder = tmp_path / "config"
    folder.mkdir()
    return folder


def readme_rows() -> list[list[str]]:
    text = (EXAMPLE / "README.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `") and line.count("|") == 6]
    return [[cell.strip().strip("`") for cell in row.strip().strip("|").split(" | ")] for row in rows]


def test_the_examples_readme_is_what_the_service_answers(example: Path, empty_config: Path) -> None:
    rows = readme_rows()
    assert len(rows) >= 20
    with serve(empty_config, example, Clock()) as mixer, grpc.insecure_channel(mixer.address) as channel:
        stub = rls_pb2_grpc.RateLimitServiceStub(channel)
        answers = []
        for domain, descriptors, hits, _, _ in rows:
            texts = [d.strip().strip("`") for d in descriptors.split(" + ")]
            answers.append(
                described(stub.ShouldRateLimit(rls_request(domain, *texts, hits=int(hits)), timeout=5))
            )
        metrics = mixer.metrics()
    assert answers == [(overall, statuses) for *_, overall, statuses in rows]
    # the stats the README names, as /metrics has them (domain and envoyproxy/ratelimit's key as labels)
    for stat, domain, key in [
        ("total_hits", "gateway", "client_app-1"),  # detailed_metric
        ("shadow_mode", "gateway", "service.method_TRACE"),
        ("total_hits", "routes", "route_books.method_GET.user"),  # value_to_metric
        ("over_limit", "edge", "remote_address_192.0.2.66"),
        ("total_hits", "edge", "remote_address"),  # every address rolled up under the key
        ("total_hits", "edge", "path_/users/*/avatar"),  # a wildcard under its pattern
    ]:
        assert mixer_metric(metrics, stat, domain, key) > 0, (stat, domain, key)
    assert metrics['mixerd_ratelimit_domain_not_found_total{domain="other"}'] == 1


def mixer_metric(metrics: dict[str, float], stat: str, domain: str, key: str) -> float:
    return metrics.get(f'mixerd_ratelimit_{stat}_total{{descriptor="{key}",domain="{domain}"}}', 0.0)


EDGE = """domain: edge
descriptors:
  - key: remote_address
    rate_limit:
      unit: minute
      requests_per_unit: {limit}
"""


def test_files_are_reloaded_all_or_nothing(tmp_path: Path, empty_config: Path) -> None:
    limits = tmp_path / "ratelimit"
    limits.mkdir()
    (limits / "edge.yaml").write_text(EDGE.format(limit=2))
    clock = Clock()
    with (
        serve(empty_config, limits, clock, config_poll_interval=0.05) as mixer,
        grpc.insecure_channel(mixer.address) as channel,
    ):
        stub = rls_pb2_grpc.RateLimitServiceStub(channel)

        def ask() -> tuple[int, int]:
            request = rls_request("edge", "remote_address=10.0.0.1")
            status = stub.ShouldRateLimit(request, timeout=5).statuses[0]
            return status.current_limit.requests_per_unit, status.limit_remaining

        assert ask() == (2, 1)
        loads = mixer.metric("mixerd_config_loads_total")
        (limits / "edge.yaml").write_text(EDGE.format(limit=5))  # the file changes: reloaded by the watch
        redis_peers.wait_until(lambda: mixer.metric("mixerd_config_loads_total") > loads, 10, "a reload")
        assert ask() == (5, 3)  # the same counter: the count survives the reload
        # A bad file rejects the change whole; the last good config serves on.
        (limits / "more.yaml").write_text(
            "domain: more\ndescriptors:\n  - key: a\n    rate_limit: {unit: fortnight}\n"
        )
        redis_peers.wait_until(lambda: mixer.metric("mixerd_config_rejections_total") == 1, 10, "a rejection")
        assert ask() == (5, 2)
        rejection = mixer.runtime.last_rejection
        assert rejection is not None
        assert [str(e) for e in rejection.errors] == [
            f"{limits}/more.yaml .descriptors[0].rate_limit.unit: expected one of second, minute, hour, day, "
            "month, year, week, got 'fortnight'",
            f"{limits}/more.yaml .descriptors[0].rate_limit.requests_per_unit: missing: how many requests "
            "each unit allows (0 blocks every request)",
        ]
        # A domain also in a ratelimitconfig of --config: rejected, naming both.
        (limits / "more.yaml").unlink()
        (empty_config / "edge.yaml").write_text(RESOURCE)
        redis_peers.wait_until(lambda: mixer.metric("mixerd_config_rejections_total") == 2, 10, "a rejection")
        assert [str(e) for e in mixer.runtime.last_rejection.errors] == [  # type: ignore[union-attr]
            f"{limits}/edge.yaml .domain: domain 'edge' is also configured by ratelimitconfig "
            "'edge.ratelimitconfig.istio-system' in edge.yaml (document 2)"
        ]
        assert ask() == (5, 1)


RESOURCE = """apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: counter, namespace: istio-system}
spec: {compiledAdapter: memquota}
---
apiVersion: config.istio.io/v1alpha2
kind: ratelimitconfig
metadata: {name: edge, namespace: istio-system}
spec:
  domain: edge
  handler: counter
  descriptors: [{key: user, rate_limit: {unit: second, requests_per_unit: 1}}]
"""


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Any]:
    with redis_peers.RedisServer(tmp_path / "redis") as server:
        yield server


def test_a_redisquota_handler_counts_the_files_for_every_replica(redis_server: Any, tmp_path: Path) -> None:
    limits = tmp_path / "ratelimit"
    limits.mkdir()
    (limits / "edge.yaml").write_text(EDGE.format(limit=3))
    config = tmp_path / "config"
    config.mkdir()
    (config / "redis.yaml").write_text(
        "apiVersion: config.istio.io/v1alpha2\nkind: handler\nmetadata: {name: shared}\n"
        f"spec: {{compiledAdapter: redisquota, params: {{redisServerUrl: '{redis_server.url}'}}}}\n"
    )
    clock = Clock()
    with (
        serve(config, limits, clock, ratelimit_handler="shared") as a,
        serve(config, limits, clock, ratelimit_handler="shared.handler.istio-system") as b,
        grpc.insecure_channel(a.address) as ca,
        grpc.insecure_channel(b.address) as cb,
    ):
        stubs = [rls_pb2_grpc.RateLimitServiceStub(c) for c in (ca, cb, ca, cb)]
        request = rls_request("edge", "remote_address=10.0.0.1")
        assert [s.ShouldRateLimit(request, timeout=5).overall_code for s in stubs] == [OK, OK, OK, OVER]
    with redis_server.client() as client:
        assert client.keys("mixerd:ratelimit:*") == [
            b"mixerd:ratelimit:{edge;remote_address=10.0.0.1;1m0s}:a"
        ]


SETTINGS_FILE = """domain: api
descriptors:
  - key: user
    metadata: {owner: {team: web}}
    rate_limit: {unit: minute, requests_per_unit: 2}
"""


def test_envoyproxy_ratelimits_server_settings(tmp_path: Path, empty_config: Path) -> None:
    limits = tmp_path / "ratelimit"
    limits.mkdir()
    (limits / "api.yaml").write_text(SETTINGS_FILE)
    clock = Clock()
    clock.now += 42 * S + S // 3
    settings = {
        "ratelimit_shadow_mode": True,
        "ratelimit_limit_response_headers_enabled": True,
        "ratelimit_limit_reset_header": "X-Reset",
        "ratelimit_response_dynamic_metadata": True,
    }
    with (
        serve(empty_config, limits, clock, **settings) as mixer,
        grpc.insecure_channel(mixer.address) as channel,
    ):
        stub = rls_pb2_grpc.RateLimitServiceStub(channel)
        answers = [stub.ShouldRateLimit(rls_request("api", "user=ann"), timeout=5) for _ in range(3)]
        shadowed = mixer.metric('mixerd_ratelimit_global_shadow_mode_total{domain="api"}')
    last = answers[-1]
    # global shadow mode: OK overall, the status still says OVER_LIMIT
    assert (last.overall_code, last.statuses[0].code) == (OK, OVER) and shadowed == 1
    assert last.statuses[0].duration_until_reset.ToNanoseconds() == 18 * S  # 17.67 s: whole seconds
    assert [(h.key, h.value) for h in last.response_headers_to_add] == [
        ("RateLimit-Limit", "2"),
        ("RateLimit-Remaining", "0"),
        ("X-Reset", "18"),
    ]
    assert json_format.MessageToDict(answers[0].dynamic_metadata) == {
        "domain": "api",
        "descriptors": [{"entries": ["user=ann"]}],
        "metadata": {"owner": {"team": "web"}},
    }
    assert "metadata" not in json_format.MessageToDict(last.dynamic_metadata)  # it did not pass


def test_stats_reach_statsd_under_envoyproxy_ratelimits_names(tmp_path: Path, empty_config: Path) -> None:
    limits = tmp_path / "ratelimit"
    limits.mkdir()
    (limits / "edge.yaml").write_text(EDGE.format(limit=1))
    with (
        peers.StatsdDaemon(tmp_path) as daemon,
        serve(
            empty_config,
            limits,
            Clock(),
            ratelimit_statsd_address=daemon.address,
            ratelimit_stats_flush_interval=0.05,
        ) as mixer,
        grpc.insecure_channel(mixer.address) as channel,
    ):
        stub = rls_pb2_grpc.RateLimitServiceStub(channel)
        for _ in range(3):
            stub.ShouldRateLimit(rls_request("edge", "remote_address=10.0.0.1"), timeout=5)
        stub.ShouldRateLimit(rls_request("nowhere", "a=b", "c=d"), timeout=5)
        with pytest.raises(grpc.RpcError):
            stub.ShouldRateLimit(rls_request(""), timeout=5)
        expected = {
            "ratelimit.service.rate_limit.edge.remote_address.total_hits": 3,
            "ratelimit.service.rate_limit.edge.remote_address.within_limit": 1,
            "ratelimit.service.rate_limit.edge.remote_address.near_limit": 1,
            "ratelimit.service.rate_limit.edge.remote_address.over_limit": 2,
            "ratelimit.service.rate_limit.nowhere.domain_not_found": 2,
            "ratelimit.service.config_load_success": 1,
            "ratelimit.service.call.should_rate_limit.service_error": 1,
            "ratelimit_server.ShouldRateLimit.total_requests": 5,
        }

        def arrived() -> bool:
            counters = daemon.counters()
            return all(counters.get(name) == n for name, n in expected.items())

        peers.wait_until(arrived, 10, f"the stats at statsd (so far {daemon.counters()})")
    assert not any("|" in line.split(":")[0] for line in daemon.lines())


# -- mixerd serve --ratelimit-config --------------------------------------------------------------------


def test_a_missing_ratelimit_folder_is_refused(tmp_path: Path) -> None:
    settings = Settings(
        address="127.0.0.1", port=0, monitoring_port=0, ratelimit_config=str(tmp_path / "missing")
    )
    with pytest.raises(ConfigError, match=r"--ratelimit-config .*missing: no such folder"):
        asyncio.run(start(settings))


def _serve(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIXERD_")}
    argv = [
        "serve",
        "--address",
        "127.0.0.1",
        "--port",
        "0",
        "--monitoring-port",
        "0",
        "--admin-port",
        "0",
        *args,
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "mixerd", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_serve_answers_from_the_files_and_refuses_bad_ones(example: Path, tmp_path: Path) -> None:
    proc = _serve("--ratelimit-config", str(example))
    try:
        assert proc.stdout is not None
        ready = READY_PATTERN.match(proc.stdout.readline().rstrip("\n"))
        assert ready is not None
        with grpc.insecure_channel(f"127.0.0.1:{ready.group(3)}") as channel:
            stub = rls_pb2_grpc.RateLimitServiceStub(channel)
            answer = stub.ShouldRateLimit(rls_request("db_connections", "database=orders"), timeout=10)
        assert described(answer) == ("OK", "OK, 199 left")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (example / "broken.yaml").write_text(
        "domain: broken\ndescriptors: [{key: a, rate_limit: {unit: ever}}]\n"
    )
    refused = _serve("--ratelimit-config", str(example))
    _, stderr = refused.communicate(timeout=30)
    assert refused.returncode == 1
    assert f"{example}/broken.yaml .descriptors[0].rate_limit.unit: expected one of" in stderr
