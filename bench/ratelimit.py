"""Envoy's ShouldRateLimit: mixerd with memquota and with redisquota (a real redis-server) beside the bare
gRPC floor, in one run.

Each request is what Envoy's filter sends for a route with two rate_limits actions: domain `edge`, one
descriptor (remote_address=<one of 100>) and one (generic_key=api, user=<one of 100>), both limited by
the config (one fixed window, one rolling window), with limits high enough that nothing is denied, so
every redisquota request goes to Redis: ONE script call for both descriptors (counted with INFO
commandstats). The floor answers ShouldRateLimit with a constant response without parsing the request.
Rounds alternate the servers; server CPU is read from /proc around each phase (mixerd's and, for
redisquota, redis-server's own).

Usage: python bench/ratelimit.py [--calls N] [--rounds N] [--clients N]
       (python bench/ratelimit.py --floor-server runs the floor alone)
"""

from __future__ import annotations

import argparse
import asyncio
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

HERE = Path(__file__).resolve()
METHOD = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit"
READY = r"serving istio\.mixer\.v1\.Mixer on (\S+)"
WARM_UP = 20  # calls per client before each measured phase
SERVE = ["-m", "mixerd", "serve", "--port", "0", "--monitoring-port", "0", "--address", "127.0.0.1"]

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
    rate_limit: {{unit: second, requests_per_unit: 1000000000}}
  - key: generic_key
    value: api
    descriptors:
    - key: user
      rate_limit: {{unit: second, requests_per_unit: 1000000000, algorithm: ROLLING_WINDOW,
                   bucket_duration: 100ms}}
"""


def _bodies(client: int, calls: int) -> list[bytes]:
    from envoy.service.ratelimit.v3 import rls_pb2

    out = []
    for i in range(calls + WARM_UP):
        request = rls_pb2.RateLimitRequest(domain="edge")
        request.descriptors.add().entries.add(key="remote_address", value=f"10.0.{client}.{i % 100}")
        user = request.descriptors.add()
        user.entries.add(key="generic_key", value="api")
        user.entries.add(key="user", value=f"user-{(i * 7) % 100}")
        out.append(request.SerializeToString())
    return out


def _client(address: str, bodies: list[bytes], start: object, done: object) -> None:
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(METHOD)
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
    """(server CPU s, redis CPU s, latencies) while `clients` processes make `calls` requests each."""
    ctx = mp.get_context("spawn")
    start, done = ctx.Barrier(clients + 1), ctx.Queue()
    bodies = [_bodies(c, calls) for c in range(clients)]
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


async def _floor(port: int) -> None:
    """A bare grpc.aio server whose ShouldRateLimit returns a constant (two OK statuses)."""
    from envoy.service.ratelimit.v3 import rls_pb2

    answer = rls_pb2.RateLimitResponse(overall_code=rls_pb2.RateLimitResponse.OK)
    for _ in range(2):
        status = answer.statuses.add(code=rls_pb2.RateLimitResponse.OK, limit_remaining=999)
        status.current_limit.requests_per_unit = 1000
        status.current_limit.unit = rls_pb2.RateLimitResponse.RateLimit.SECOND
        status.duration_until_reset.FromMilliseconds(500)
    body = answer.SerializeToString()

    async def should_rate_limit(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return body

    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(should_rate_limit)
    service = "envoy.service.ratelimit.v3.RateLimitService"
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service, {"ShouldRateLimit": handler}),)
    )
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"floor: serving on 127.0.0.1:{bound}", flush=True)
    await server.wait_for_termination()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000, help="requests per client per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--floor-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_server:
        asyncio.run(_floor(0))
        return
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed: run tests/peers/install.sh")

    work = Path(tempfile.mkdtemp())
    port = _free_port()
    redis_proc = subprocess.Popen(
        [
            *("redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            *("--dir", str(work), "--logfile", str(work / "redis.log")),
        ]
    )
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.02)
    folders = {}
    for adapter, params in (
        ("memquota", "{}"),
        ("redisquota", f"{{redisServerUrl: 'redis://127.0.0.1:{port}'}}"),
    ):
        folder = work / adapter
        folder.mkdir()
        (folder / "ratelimit.yaml").write_text(CONFIG.format(adapter=adapter, params=params))
        folders[adapter] = folder

    cpu: dict[str, list[float]] = {}
    redis_cpu: list[float] = []
    latencies: dict[str, list[float]] = {}
    round_trips: list[float] = []
    try:
        with (
            server_process([str(HERE), "--floor-server"], r"serving on (\S+)") as floor,
            server_process([*SERVE, "--config", str(folders["memquota"])], READY) as mem,
            server_process([*SERVE, "--config", str(folders["redisquota"])], READY) as red,
        ):
            runs = [("floor", floor), ("memquota", mem), ("redisquota", red)]
            for _ in range(args.rounds):
                for name, server in runs:
                    if name == "redisquota":
                        client.config_resetstat()
                    pid = redis_proc.pid if name == "redisquota" else None
                    used, used_by_redis, lat = load(server, args.calls, args.clients, pid)
                    requests = args.calls * args.clients
                    cpu.setdefault(name, []).append(used / requests * 1e6)
                    latencies.setdefault(name, []).extend(lat)
                    if name == "redisquota":
                        redis_cpu.append(used_by_redis / requests * 1e6)
                        stats = client.info("commandstats")
                        calls = sum(
                            stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("evalsha", "eval")
                        )
                        round_trips.append(calls / (requests + WARM_UP * args.clients))
    finally:
        client.close()
        redis_proc.terminate()
        redis_proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)

    floor_us = statistics.median(cpu["floor"])
    print(f"{args.rounds} rounds, {args.clients} client processes, 2 counted descriptors per request")
    print("server CPU per ShouldRateLimit (median of rounds)")
    for name, samples in cpu.items():
        us = statistics.median(samples)
        print(f"  {name:10s} {us:7.1f} us/call   ratio {us / floor_us:.2f}x floor")
    print(f"  redis-server {statistics.median(redis_cpu):5.1f} us/call (its own process)")
    print(f"Redis script calls per request (INFO commandstats): {', '.join(f'{r:.3f}' for r in round_trips)}")
    print("client-side latency p50 / p99 (ms)")
    for name, values in latencies.items():
        q = statistics.quantiles(values, n=100)
        print(f"  {name:10s} {q[49] * 1e3:6.2f} / {q[98] * 1e3:6.2f}")


if __name__ == "__main__":
    main()
