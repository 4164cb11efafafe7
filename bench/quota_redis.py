"""Check with one quota: redisquota (a real redis-server) beside memquota and the bare gRPC floor, in one run.

Issue 6's targets: server CPU per Check with one Redis quota <= 1.6x the floor, p99 latency reported
beside memquota's, and exactly one Redis round trip per Check (counted with INFO commandstats).

Every Check carries its own deduplication id (as a proxy sends), asks for `requestcount` amount 1, and
the limits are high enough that nothing is denied, so every redisquota Check goes to Redis (the honest
cost; `--exhausted` instead sets a limit of 1 per minute, so the exhausted cache answers nearly all).
`mem+await` is memquota answering after one `await asyncio.sleep(0)`: the cost of the Check's coroutine
suspending once inside grpc.aio, which every backend reached over a socket pays. Rounds alternate the
servers; server CPU is read from /proc around each phase (mixerd's and, for
redisquota, redis-server's own).

Usage: python bench/quota_redis.py [--calls N] [--rounds N] [--clients N] [--exhausted]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import redis
from _common import ServerProcess, process_cpu_seconds, server_process

from mixerd.api.mixer.v1 import mixer_pb2
from mixerd.attribute import encode_attributes
from mixerd.testing import typical_http_bag

HERE = Path(__file__).resolve().parent
CHECK = "/istio.mixer.v1.Mixer/Check"
READY = r"serving istio\.mixer\.v1\.Mixer on (\S+)"
WARM_UP = 20  # calls per client before each measured phase (they reach Redis too)
SERVE = ["serve", "--port", "0", "--monitoring-port", "0", "--address", "127.0.0.1"]
#: `mixerd serve` with redisquota among its adapters, whether or not mixerd.plugins lists it yet.
LAUNCHER = (
    "import sys, mixerd.server.app as app\n"
    "from mixerd.plugins import load_adapters\n"
    "from mixerd_adapters import redisquota\n"
    "def adapters():\n"
    "    found = dict(load_adapters())\n"
    "    found.setdefault('redisquota', redisquota.mixerd_adapter_info())\n"
    "    return found\n"
    "app.load_adapters = adapters\n"
    "from mixerd.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)

#: `mixerd serve` whose memquota answers after one `await asyncio.sleep(0)`: what one suspension of the
#: Check costs inside grpc.aio, the least any quota backend reached over the network adds to memquota.
SUSPENDED = (
    "import asyncio, sys\n"
    "from mixerd_adapters.memquota.handler import MemQuota\n"
    "answer = MemQuota.handle_quota\n"
    "async def after_one_suspension(self, instance, args):\n"
    "    await asyncio.sleep(0)\n"
    "    return answer(self, instance, args)\n"
    "MemQuota.handle_quota = after_one_suspension\n"
    "from mixerd.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)

CONFIG = """\
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {{name: quota, namespace: istio-system}}
spec:
  compiledAdapter: {adapter}
  params:
{params}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {{name: requestcount, namespace: istio-system}}
spec:
  compiledTemplate: quota
  params:
    dimensions:
      destination: destination.service.name | "unknown"
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {{name: quota, namespace: istio-system}}
spec:
  actions: [{{handler: quota, instances: [requestcount]}}]
"""


def _params(adapter: str, redis_url: str, exhausted: bool) -> str:
    limit = "maxAmount: 1, validDuration: 60s" if exhausted else "maxAmount: 1000000000, validDuration: 1s"
    quota = f"    quotas: [{{name: requestcount.instance.istio-system, {limit}"
    if adapter == "memquota":
        return quota + "}]"
    return (
        quota
        + ", rateLimitAlgorithm: ROLLING_WINDOW, bucketDuration: 100ms}]\n"
        + f"    redisServerUrl: {redis_url}"
    )


def check_bodies(client: int, calls: int) -> list[bytes]:
    request = mixer_pb2.CheckRequest(attributes=encode_attributes(typical_http_bag()), global_word_count=222)
    request.quotas["requestcount"].amount = 1
    out = []
    for i in range(calls + WARM_UP):
        request.deduplication_id = f"c{client}-{time.time_ns()}-{i}"
        out.append(request.SerializeToString())
    return out


def _client(address: str, bodies: list[bytes], start: object, done: object) -> None:
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(CHECK)
        for body in bodies[:WARM_UP]:
            call(body, timeout=30)
        start.wait()  # type: ignore[attr-defined]
        latencies = []
        for body in bodies[WARM_UP:]:
            t = time.perf_counter()
            call(body, timeout=30)
            latencies.append(time.perf_counter() - t)
        done.put(latencies)  # type: ignore[attr-defined]


def load(
    server: ServerProcess, calls: int, clients: int, redis_pid: int | None
) -> tuple[float, float, list[float]]:
    """(server CPU s, redis CPU s, latencies) while `clients` processes make `calls` Checks each."""
    ctx = mp.get_context("spawn")
    start, done = ctx.Barrier(clients + 1), ctx.Queue()
    bodies = [check_bodies(c, calls) for c in range(clients)]
    procs = [ctx.Process(target=_client, args=(server.address, b, start, done)) for b in bodies]
    for p in procs:
        p.start()
    start.wait()
    cpu0 = server.cpu()
    redis0 = process_cpu_seconds(redis_pid) if redis_pid else 0.0
    latencies = [x for _ in procs for x in done.get()]
    cpu = server.cpu() - cpu0
    redis_cpu = (process_cpu_seconds(redis_pid) - redis0) if redis_pid else 0.0
    for p in procs:
        p.join()
    return cpu, redis_cpu, latencies


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000, help="Check calls per client per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument(
        "--exhausted", action="store_true", help="a used-up quota: the exhausted cache answers"
    )
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed: run tests/peers/install.sh")

    work = Path(tempfile.mkdtemp())
    port = _free_port()
    files = ["--dir", str(work), "--logfile", str(work / "redis.log")]
    redis_proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            *files,
        ]
    )
    url = f"redis://127.0.0.1:{port}"
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.02)
    folders = {}
    for adapter in ("memquota", "redisquota"):
        folder = work / adapter
        folder.mkdir()
        text = CONFIG.format(adapter=adapter, params=_params(adapter, url, args.exhausted))
        (folder / "quota.yaml").write_text(text)
        folders[adapter] = folder

    cpu: dict[str, list[float]] = {}
    redis_cpu: list[float] = []
    latencies: dict[str, list[float]] = {}
    round_trips: list[float] = []
    try:
        with (
            server_process([str(HERE / "floor_server.py")], r"serving on (\S+)") as floor,
            server_process(["-m", "mixerd", *SERVE, "--config", str(folders["memquota"])], READY) as mem,
            server_process(["-c", SUSPENDED, *SERVE, "--config", str(folders["memquota"])], READY) as sus,
            server_process(["-c", LAUNCHER, *SERVE, "--config", str(folders["redisquota"])], READY) as red,
        ):
            runs = [("floor", floor), ("memquota", mem), ("mem+await", sus), ("redisquota", red)]
            for _ in range(args.rounds):
                for name, server in runs:
                    if name == "redisquota":
                        client.config_resetstat()
                    used, used_by_redis, lat = load(
                        server, args.calls, args.clients, redis_proc.pid if name == "redisquota" else None
                    )
                    checks = args.calls * args.clients
                    cpu.setdefault(name, []).append(used / checks * 1e6)
                    latencies.setdefault(name, []).extend(lat)
                    if name == "redisquota":
                        redis_cpu.append(used_by_redis / checks * 1e6)
                        stats = client.info("commandstats")
                        calls = sum(
                            stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("evalsha", "eval")
                        )
                        round_trips.append(calls / (checks + WARM_UP * args.clients))
    finally:
        client.close()
        redis_proc.terminate()
        redis_proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)

    floor_us = statistics.median(cpu["floor"])
    mode = "an exhausted quota (the cache answers)" if args.exhausted else "a quota that always has room"
    print(f"{args.rounds} rounds, {args.clients} client processes, {mode}")
    print("server CPU per Check (median of rounds)")
    for name, samples in cpu.items():
        us = statistics.median(samples)
        print(f"  {name:10s} {us:7.1f} us/call   ratio {us / floor_us:.2f}x floor")
    print(f"  redis-server {statistics.median(redis_cpu):5.1f} us/call (its own process)")
    print(f"Redis script calls per Check (INFO commandstats): {', '.join(f'{r:.3f}' for r in round_trips)}")
    print("client-side latency p50 / p99 (ms)")
    for name, values in latencies.items():
        q = statistics.quantiles(values, n=100)
        print(f"  {name:10s} {q[49] * 1e3:6.2f} / {q[98] * 1e3:6.2f}")


if __name__ == "__main__":
    main()
