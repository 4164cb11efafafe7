"""deploy/ run for real, as far as a machine without a cluster can: the Redis arguments on redis-server,
two mixerd replicas on the rules ConfigMap sharing one Redis, the Envoy cluster docs/deploy.md shows in
a real Envoy, and the wheel the Dockerfile builds from the files it copies.

tests/unit/test_deploy.py checks the manifests statically; this runs what needs processes.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from peers import redis as redis_peers
from peers.envoy import EnvoyProxy, ExtAuthz, RateLimit, Upstream, bootstrap, remote_address, validate
from peers.kubelet import write_configmap
from peers.receivers import free_port, wait_until
from peers.wheels import build_wheel, dockerfile_context

from mixerd.api.envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc
from mixerd.api.mixer.v1 import mixer_pb2, mixer_pb2_grpc
from mixerd.attribute import GLOBAL_WORDS, encode_attributes
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime
from mixerd.testing_scenarios import run_mixer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "kubernetes"
#: 2026-01-01T00:00:00Z: both replicas' clock, so windows cannot roll over mid-test.
NOW = 1_767_225_600 * 1_000_000_000
#: The redisServerUrl of the rules ConfigMap, replaced by the test Redis's.
IN_CLUSTER_URL = "redis://redis:6379/0"


def _doc(file: str, kind: str, name: str) -> dict[str, Any]:
    [found] = [
        d
        for d in yaml.safe_load_all((K8S / file).read_text())
        if d["kind"] == kind and d["metadata"]["name"] == name
    ]
    return found


def _redis_container() -> dict[str, Any]:
    [container] = _doc("redis.yaml", "Deployment", "redis")["spec"]["template"]["spec"]["containers"]
    return container


def _mounted_rules(folder: Path, redis_url: str) -> Path:
    """The rules ConfigMap laid out as the kubelet mounts it, pointed at `redis_url`."""
    data = dict(_doc("rules-configmap.yaml", "ConfigMap", "mixerd-rules")["data"])
    assert sum(text.count(IN_CLUSTER_URL) for text in data.values()) == 1
    data = {key: text.replace(IN_CLUSTER_URL, redis_url) for key, text in data.items()}
    return write_configmap(folder, "2026_01_01_00_00_00.000000001", data)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[redis_peers.RedisServer]:
    with redis_peers.RedisServer(tmp_path / "redis") as server:
        yield server


# -- Redis ---------------------------------------------------------------------------------------------


def test_redis_server_takes_the_manifest_arguments_and_saves_nothing(tmp_path: Path) -> None:
    redis_peers.ensure_redis()
    container = _redis_container()
    args = list(container["args"])
    port = free_port()
    args[args.index("--port") + 1] = str(port)
    command = [*container["command"], *args, "--bind", "127.0.0.1", "--dir", str(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        with redis.Redis(host="127.0.0.1", port=port, socket_timeout=2) as client:

            def answers() -> bool:
                assert process.poll() is None, f"redis-server refused {args}"
                try:
                    return bool(client.ping())
                except redis.ConnectionError:
                    return False

            wait_until(answers, 10, "redis-server")
            config = client.config_get("*")
            client.set("mixerd:quota:probe", "1", px=60_000)
    finally:
        process.terminate()
        assert process.wait(10) == 0
    assert config["save"] == "" and config["appendonly"] == "no"
    assert config["maxmemory"] == str(200 * 1024 * 1024)
    assert config["maxmemory-policy"] == "volatile-ttl"
    assert list(tmp_path.iterdir()) == []  # stopped with a key in it, and wrote nothing


# -- two replicas, one Redis -----------------------------------------------------------------------------

_ids = itertools.count()


def _quota(stub: mixer_pb2_grpc.MixerStub, destination: str, amount: int, dedup: str | None = None) -> int:
    """Granted amount of a best-effort `requestcount` quota for calls to `destination`."""
    request = mixer_pb2.CheckRequest(
        attributes=encode_attributes({"destination.service.name": destination}),
        global_word_count=len(GLOBAL_WORDS),
        deduplication_id=dedup or f"call-{next(_ids)}",
    )
    request.quotas["requestcount"].amount = amount
    request.quotas["requestcount"].best_effort = True
    response = stub.Check(request, timeout=10)
    assert response.precondition.status.code == 0
    granted: int = response.quotas["requestcount"].granted_amount
    return granted


def _rate_limit(stub: rls_pb2_grpc.RateLimitServiceStub, client_ip: str, hits: int) -> tuple[str, int]:
    request = rls_pb2.RateLimitRequest(domain="edge", hits_addend=hits)
    request.descriptors.add().entries.add(key="remote_address", value=client_ip)
    [status] = stub.ShouldRateLimit(request, timeout=10).statuses
    return rls_pb2.RateLimitResponse.Code.Name(status.code), status.limit_remaining


def test_two_replicas_on_the_configmap_rules_count_one_quota_in_redis(
    tmp_path: Path, redis_server: redis_peers.RedisServer
) -> None:
    folder = _mounted_rules(tmp_path / "rules", redis_server.url)
    replicas = [Runtime(load_adapters(), folder=folder, clock=lambda: NOW) for _ in range(2)]
    with (
        run_mixer(replicas[0]) as a,
        run_mixer(replicas[1]) as b,
        grpc.insecure_channel(a.address) as channel_a,
        grpc.insecure_channel(b.address) as channel_b,
    ):
        mixer_a, mixer_b = mixer_pb2_grpc.MixerStub(channel_a), mixer_pb2_grpc.MixerStub(channel_b)
        # ratings may make 50 calls a second, whichever replica counts them.
        assert _quota(mixer_a, "ratings", 30, dedup="first") == 30
        assert _quota(mixer_b, "ratings", 30, dedup="first") == 30  # a retry elsewhere: not charged again
        assert _quota(mixer_b, "ratings", 30) == 20
        assert _quota(mixer_a, "ratings", 1) == 0
        assert _quota(mixer_a, "reviews", 500) == 500  # another bucket, the default limit

        # Envoy's rate limits (domain edge): 100 a second per client address, across replicas.
        rls_a = rls_pb2_grpc.RateLimitServiceStub(channel_a)
        rls_b = rls_pb2_grpc.RateLimitServiceStub(channel_b)
        assert _rate_limit(rls_a, "10.0.0.1", 60) == ("OK", 40)
        assert _rate_limit(rls_b, "10.0.0.1", 60) == ("OVER_LIMIT", 40)

        # What Envoy's grpc_health_check ({} : the empty service name) asks, docs/deploy.md.
        health = health_pb2_grpc.HealthStub(channel_b).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert redis_server.commandstats().get("evalsha", 0) > 0


# -- the Envoy cluster of docs/deploy.md ---------------------------------------------------------------------


def _docs_envoy_cluster() -> dict[str, Any]:
    [block] = [
        b
        for b in re.findall(r"```yaml\n(.*?)```", (REPO / "docs" / "deploy.md").read_text(), re.S)
        if "clusters:" in b
    ]
    [cluster] = yaml.safe_load(block)["clusters"]
    assert isinstance(cluster, dict)
    return cluster


def _point_at(cluster: dict[str, Any], host: str, port: int) -> dict[str, Any]:
    [endpoint] = [e for group in cluster["load_assignment"]["endpoints"] for e in group["lb_endpoints"]]
    address = endpoint["endpoint"]["address"]["socket_address"]
    address["address"], address["port_value"] = host, port
    return cluster


def test_envoy_accepts_the_docs_cluster(tmp_path: Path) -> None:
    config = {"static_resources": {"clusters": [_docs_envoy_cluster()]}}
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(config))
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_envoy_reaches_the_replicas_through_the_docs_cluster(
    tmp_path: Path,
    redis_server: redis_peers.RedisServer,
    upstream: Upstream,
    start_envoy: Callable[..., EnvoyProxy],
) -> None:
    """The cluster as shown (STRICT_DNS, HTTP/2, gRPC health check), with the headless Service's name
    replaced by localhost: Envoy finds mixerd healthy and its ext_authz and ratelimit calls work."""
    folder = _mounted_rules(tmp_path / "rules", redis_server.url)
    with run_mixer(Runtime(load_adapters(), folder=folder)) as mixer:
        port = int(mixer.address.rpartition(":")[2])
        address = f"127.0.0.1:{port}"
        config = bootstrap(
            upstream.address,
            ext_authz=ExtAuthz(address, timeout=5),
            ratelimit=RateLimit(address, domain="edge", descriptors=[[remote_address()]], timeout=5),
        )
        clusters = config["static_resources"]["clusters"]
        clusters[:] = [c for c in clusters if c["name"] != "mixerd"]
        clusters.append(_point_at(_docs_envoy_cluster(), "localhost", port))
        envoy = start_envoy(upstream, config=config)

        def healthy() -> bool:
            with urllib.request.urlopen(f"{envoy.admin_url}/clusters?format=json", timeout=5) as answer:
                statuses = json.load(answer)["cluster_statuses"]
            [cluster] = [c for c in statuses if c["name"] == "mixerd"]
            hosts = cluster.get("host_statuses", [])
            checked = envoy.stat("cluster.mixerd.health_check.success") > 0
            return (
                checked
                and bool(hosts)
                and not any(h["health_status"].get("failed_active_health_check") for h in hosts)
            )

        wait_until(healthy, 20, "Envoy's health check to find mixerd")
        redis_server.reset_stats()
        assert envoy.get("/").status == 200  # allowed by the Check rules, counted in Redis
        assert redis_server.commandstats().get("evalsha", 0) == 1


# -- the image ---------------------------------------------------------------------------------------------


def test_the_files_the_dockerfile_copies_build_a_wheel_with_the_entrypoint(tmp_path: Path) -> None:
    context = dockerfile_context(tmp_path / "context")
    wheel = build_wheel(context, tmp_path / "wheels")
    names = zipfile.ZipFile(wheel).namelist()
    assert "mixerd/rules/default/accesslog.yaml" in names  # `mixerd serve` without --config needs it
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "mixerd = mixerd.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
