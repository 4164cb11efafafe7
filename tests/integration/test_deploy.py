"""deploy/ run for real, as far as a machine without a cluster can: the Redis container's command on
redis-server with the password from its Secret, two mixerd replicas on the rules ConfigMap sharing that
Redis with the Secret mounted as the kubelet mounts it (and rotated as docs/deploy.md says), the Envoy
cluster docs/deploy.md shows in a real Envoy, and the wheel the Dockerfile builds from the files it
copies.

tests/unit/test_deploy.py checks the manifests statically; this runs what needs processes.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from secrets import token_hex
from typing import Any

import grpc
import pytest
import redis
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from peers import redis as redis_peers
from peers.envoy import EnvoyProxy, ExtAuthz, RateLimit, Upstream, bootstrap, remote_address, validate
from peers.kubelet import container_env, expand, relocate_mount, volume_files, write_configmap, write_secret
from peers.receivers import wait_until
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
#: The Redis Service's address in the rules ConfigMap's redisServerUrl, replaced by the test Redis's.
IN_CLUSTER_ADDRESS = "@redis:6379/0"
#: The version folders of mounted ConfigMaps and Secrets (the kubelet names them after the time).
STAMP, ROTATED = "2026_01_01_00_00_00.000000001", "2026_01_01_00_05_00.000000002"


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


def _secret_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    """mixerd's mount of the Secret volume, and the volume's `secret` source."""
    pod = _doc("mixerd.yaml", "Deployment", "mixerd")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    [container] = pod["containers"]
    [mount] = [m for m in container["volumeMounts"] if "secret" in volumes[m["name"]]]
    return mount, volumes[mount["name"]]["secret"]


def _mount_secret(folder: Path, stamp: str, secret: Mapping[str, str]) -> Path:
    """The Secret (its `data`) as the kubelet mounts it in a mixerd pod, or updates it on a rotation."""
    return write_secret(folder, stamp, volume_files(_secret_volume()[1], secret))


def _mounted_rules(folder: Path, redis_address: str, secret_folder: Path) -> Path:
    """The rules ConfigMap laid out as the kubelet mounts it, with the Redis Service's address replaced
    by `redis_address`, and the Secret's mount path (which tests cannot create) by `secret_folder`."""
    data = dict(_doc("rules-configmap.yaml", "ConfigMap", "mixerd-rules")["data"])
    assert sum(text.count(IN_CLUSTER_ADDRESS) for text in data.values()) == 1
    data = {key: text.replace(IN_CLUSTER_ADDRESS, f"@{redis_address}/0") for key, text in data.items()}
    return write_configmap(
        folder, STAMP, relocate_mount(data, _secret_volume()[0]["mountPath"], secret_folder)
    )


class RedisPod(redis_peers.RedisServer):
    """redis-server started as the kubelet starts redis.yaml's container: its command and args, `$(VAR)`
    expanded from the environment the Secret gives it at that start; on a free loopback port, with the
    pod's /data as a folder of the test's own. `secret` is the Secret's data as the API holds it: change
    it, and stop() then start() is the pod restarted with the new value."""

    def __init__(self, folder: Path, secret: dict[str, str]) -> None:
        super().__init__(folder, name="redis-pod")
        self.secret = secret
        self.data = folder / "data"
        self.data.mkdir()

    def env(self) -> dict[str, str]:
        return container_env(_redis_container(), {"redis-auth": self.secret})

    def command(self) -> list[str]:
        container = _redis_container()
        env = self.env()
        argv = [expand(word, env) for word in [*container["command"], *container["args"]]]
        argv[argv.index("--port") + 1] = str(self.port)
        self.password = argv[argv.index("--requirepass") + 1]  # what client() logs in with
        return [*argv, "--bind", "127.0.0.1", "--dir", str(self.data), "--logfile", str(self._log)]

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def redis_cli(self, args: list[str], env: Mapping[str, str], stdin: str = "") -> tuple[int, str]:
        """redis-cli run in the pod, as the probe or `kubectl exec` run it: (exit code, output)."""
        argv = [*args[:1], "-p", str(self.port), *args[1:]]
        env = {"PATH": os.environ["PATH"], **env}
        done = subprocess.run(argv, input=stdin, env=env, capture_output=True, text=True, timeout=10)
        return done.returncode, done.stdout


@pytest.fixture
def redis_pod(tmp_path: Path) -> Iterator[RedisPod]:
    with RedisPod(tmp_path / "redis", {"password": token_hex(24)}) as server:  # openssl rand -hex 24
        yield server


# -- Redis ---------------------------------------------------------------------------------------------


def test_redis_server_takes_the_manifest_arguments_and_saves_nothing(redis_pod: RedisPod) -> None:
    password = redis_pod.secret["password"]
    assert redis_pod.password == password
    with redis_pod.client() as client:
        config = client.config_get("*")
        client.set("mixerd:quota:probe", "1", px=60_000)
    assert config["save"] == "" and config["appendonly"] == "no"
    assert config["maxmemory"] == str(200 * 1024 * 1024)
    assert config["maxmemory-policy"] == "volatile-ttl"
    assert config["requirepass"] == password
    with (
        redis.Redis(host="127.0.0.1", port=redis_pod.port, socket_timeout=2) as stranger,
        pytest.raises(redis.AuthenticationError),
    ):
        stranger.set("mixerd:quota:probe", "2")
    # The password was on redis-server's command line; Redis rewrites its title, so ps cannot show it.
    assert password not in Path(f"/proc/{redis_pod.pid}/cmdline").read_text()
    redis_pod.stop()
    assert list(redis_pod.data.iterdir()) == []  # stopped with a key in it, and wrote nothing


def test_the_readiness_probe_is_ready_with_the_secret_s_password_only(redis_pod: RedisPod) -> None:
    """The probe's command as the kubelet runs it in the container (its redis-cli on the test port)."""
    command = _redis_container()["readinessProbe"]["exec"]["command"]
    assert command[:2] == ["sh", "-c"]
    script = command[2].replace("redis-cli", f"redis-cli -p {redis_pod.port}")

    def probe(env: Mapping[str, str]) -> int:
        done = subprocess.run(["sh", "-c", script], env=dict(env), capture_output=True, timeout=10)
        return done.returncode

    path = {"PATH": os.environ["PATH"]}
    assert probe({**path, **redis_pod.env()}) == 0
    assert probe({**path, "REDISCLI_AUTH": "not-the-password"}) != 0
    assert probe(path) != 0  # redis-cli itself exits 0 on NOAUTH


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


def _wait_counting(stub: mixer_pb2_grpc.MixerStub, replica: str) -> None:
    """Until the replica counts in Redis. mixerd does not wait for Redis, and with failPolicy open a quota
    it cannot count is granted whole: 501 of a limit of 500. A fresh bucket each time, which no replica
    can answer from its cache of used-up buckets."""
    wait_until(lambda: _quota(stub, f"warm-up-{next(_ids)}", 501) <= 500, 20, f"{replica} to count in Redis")


def _mixerd_pods(tmp_path: Path, redis_pod: RedisPod) -> Path:
    """What a mixerd pod mounts, in `tmp_path`: the Secret (secret/) and the rules reading it (rules/);
    the rules folder."""
    secret = _mount_secret(tmp_path / "secret", STAMP, redis_pod.secret)
    return _mounted_rules(tmp_path / "rules", redis_pod.address, secret)


def test_two_replicas_on_the_configmap_rules_count_one_quota_in_redis(
    tmp_path: Path, redis_pod: RedisPod
) -> None:
    folder = _mixerd_pods(tmp_path, redis_pod)
    replicas = [Runtime(load_adapters(), folder=folder, clock=lambda: NOW) for _ in range(2)]
    with (
        run_mixer(replicas[0]) as a,
        run_mixer(replicas[1]) as b,
        grpc.insecure_channel(a.address) as channel_a,
        grpc.insecure_channel(b.address) as channel_b,
    ):
        mixer_a, mixer_b = mixer_pb2_grpc.MixerStub(channel_a), mixer_pb2_grpc.MixerStub(channel_b)
        _wait_counting(mixer_a, "replica a")
        _wait_counting(mixer_b, "replica b")
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
    assert redis_pod.commandstats().get("evalsha", 0) > 0


def test_a_rotated_secret_reaches_both_replicas_and_redis_as_the_docs_say(
    tmp_path: Path, redis_pod: RedisPod
) -> None:
    """docs/deploy.md's four steps: a new password, given to Redis beside the old one (the docs' line),
    put in the Secret (the kubelet's ..data swap in each pod), then Redis restarted with it alone; the
    replicas reload and keep counting throughout."""
    folder = _mixerd_pods(tmp_path, redis_pod)
    replicas = [Runtime(load_adapters(), folder=folder, clock=lambda: NOW) for _ in range(2)]
    old = redis_pod.secret["password"]
    with (
        run_mixer(replicas[0], config_poll_interval=0.05) as a,
        run_mixer(replicas[1], config_poll_interval=0.05) as b,
        grpc.insecure_channel(a.address) as channel_a,
        grpc.insecure_channel(b.address) as channel_b,
    ):
        mixer_a, mixer_b = mixer_pb2_grpc.MixerStub(channel_a), mixer_pb2_grpc.MixerStub(channel_b)
        _wait_counting(mixer_a, "replica a")
        _wait_counting(mixer_b, "replica b")
        assert _quota(mixer_a, "ratings", 30) == 30

        # 1-2. A new password, which Redis takes beside the old one.
        new = token_hex(24)
        [line] = [line for line in _docs_lines() if "ACL SETUSER" in line]
        printf, exec_in_pod = _pipeline_words(line)
        command = subprocess.run([*printf[:-1], new], capture_output=True, text=True, check=True).stdout
        cli = exec_in_pod[exec_in_pod.index("--") + 1 :]
        assert redis_pod.redis_cli(cli, redis_pod.env(), stdin=command) == (0, "OK\n")
        assert [r.stats.config_loads for r in replicas] == [1, 1]

        # 3. The Secret holds it; each pod's kubelet writes a new version and swaps ..data onto it.
        redis_pod.secret["password"] = new
        _mount_secret(tmp_path / "secret", ROTATED, redis_pod.secret)
        wait_until(lambda: [r.stats.config_loads for r in replicas] == [2, 2], 20, "both replicas to reload")
        assert [r.stats.handler_builds for r in replicas] == [2, 2]  # the Redis handler, built anew
        _wait_counting(mixer_a, "replica a")
        _wait_counting(mixer_b, "replica b")
        assert _quota(mixer_b, "ratings", 30) == 20  # the new handlers count on, in the same window

        # 4. Redis restarted: the Secret's password alone opens it, and it starts empty.
        redis_pod.stop()
        redis_pod.start()
        assert redis_pod.password == new
        with (
            redis.Redis(host="127.0.0.1", port=redis_pod.port, password=old, socket_timeout=2) as stale,
            pytest.raises(redis.AuthenticationError),
        ):
            stale.ping()
        _wait_counting(mixer_a, "replica a")  # reconnected, with the password it read from the file
        _wait_counting(mixer_b, "replica b")
        assert _quota(mixer_a, "reviews", 300) == 300
        assert _quota(mixer_b, "reviews", 300) == 200
        assert [r.stats.config_loads for r in replicas] == [2, 2]


def _docs_lines() -> list[str]:
    """The lines of docs/deploy.md's shell blocks."""
    blocks = re.findall(r"```sh\n(.*?)```", (REPO / "docs" / "deploy.md").read_text(), re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def _pipeline_words(line: str) -> list[list[str]]:
    """A shell line's commands, each as its words."""
    return [shlex.split(part) for part in line.split(" | ")]


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
    redis_pod: RedisPod,
    upstream: Upstream,
    start_envoy: Callable[..., EnvoyProxy],
) -> None:
    """The cluster as shown (STRICT_DNS, HTTP/2, gRPC health check), with the headless Service's name
    replaced by localhost: Envoy finds mixerd healthy and its ext_authz and ratelimit calls work."""
    folder = _mixerd_pods(tmp_path, redis_pod)
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
        redis_pod.reset_stats()
        assert envoy.get("/").status == 200  # allowed by the Check rules, counted in Redis
        assert redis_pod.commandstats().get("evalsha", 0) == 1


# -- the image ---------------------------------------------------------------------------------------------


def test_the_files_the_dockerfile_copies_build_a_wheel_with_the_entrypoint(tmp_path: Path) -> None:
    context = dockerfile_context(tmp_path / "context")
    wheel = build_wheel(context, tmp_path / "wheels")
    names = zipfile.ZipFile(wheel).namelist()
    assert "mixerd/rules/default/accesslog.yaml" in names  # `mixerd serve` without --config needs it
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "mixerd = mixerd.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
