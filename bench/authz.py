"""Server CPU per ext_authz Check with the verdict cache on and off, beside the bare gRPC floor, in one run.

mixerd serves the 5-rule benchmark policy (bench/configs/policy5/; ext_authz asks for no quota, so its
four check rules run; `--policy policy15` takes it three times over) twice: with `--authz-cache-size 0`
and with the default cache. The requests are what Envoy sends for repeated calls of one user to one
path: 100 CheckRequests that differ in x-request-id, stream id and time (which no rule reads), cycled.
The floor (bench/floor_server.py) answers the same bytes with a constant without parsing them. Rounds
alternate the three servers; server CPU comes from /proc around each load phase (bench/rpc.py explains
the method). Medians and ratios are printed, with mixerd's own CPU above the floor, which is what the
cache can save.

The same comparison is then made in-process (the Check handler called in a loop, no gRPC), where the
few microseconds mixerd spends are not buried in gRPC's cost and its noise.

Usage: python bench/authz.py [--calls N] [--rounds N] [--clients N] [--policy policy5|policy15]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from _common import MIXERD_READY, MIXERD_SERVE, WARM_UP, ServerProcess, drive, server_process

from mixerd.api.envoy.service.auth.v3 import external_auth_pb2
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime, RuntimeDispatcher
from mixerd.server.envoy.authz import AuthorizationService
from mixerd.server.envoy.authz_metrics import AuthzStats
from mixerd.server.envoy.verdict_cache import VerdictCache

HERE = Path(__file__).resolve().parent
CONFIGS = HERE / "configs"
AUTHZ_CHECK = "/envoy.service.auth.v3.Authorization/Check"
FLOOR_CHECK = "/istio.mixer.v1.Mixer/Check"  # the floor answers any bytes there without parsing them
MIXERD = list(MIXERD_SERVE)
DISTINCT_REQUESTS = 100


def envoy_request(n: int) -> bytes:
    """What Envoy 1.40's ext_authz filter sends for `GET /reviews/1` by user jason (the n-th time)."""
    request = external_auth_pb2.CheckRequest()
    attributes = request.attributes
    attributes.source.address.socket_address.address = "10.44.0.12"
    attributes.source.address.socket_address.port_value = 40000 + n
    attributes.source.principal = "spiffe://cluster.local/ns/default/sa/productpage"
    attributes.destination.address.socket_address.address = "10.44.0.17"
    attributes.destination.address.socket_address.port_value = 9080
    attributes.destination.principal = "spiffe://cluster.local/ns/default/sa/reviews"
    attributes.request.time.seconds = 1_795_000_000 + n
    attributes.request.time.nanos = 937_170_000
    http = attributes.request.http
    http.id = str(3_023_511_715_698_565_316 + n)
    http.method = "GET"
    http.path = "/reviews/1"
    http.host = "reviews:9080"
    http.scheme = "http"
    http.protocol = "HTTP/1.1"
    http.headers.update(
        {
            ":authority": "reviews:9080",
            ":method": "GET",
            ":path": "/reviews/1",
            ":scheme": "http",
            "accept-encoding": "gzip, deflate",
            "user-agent": "python-requests/2.31.0",
            "x-forwarded-proto": "http",
            "x-request-id": f"5d0d2a5c-87b5-4bd2-a3d5-{n:012d}",
            "x-user": "jason",
        }
    )
    return request.SerializeToString()


def _monitoring_url(server: ServerProcess) -> str:
    assert server.proc.stdout is not None
    line = server.proc.stdout.readline()  # the line after the serving line (mixerd.server.app)
    match = re.search(r"monitoring on (\S+)", line)
    assert match is not None, line
    return match.group(1)


def _metric(url: str, name: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def in_process(policy: Path, bodies: list[bytes], calls: int) -> dict[str, float]:
    """Microseconds per Check of the handler itself, cache off and on (median of 5 loops each)."""

    class _Context:
        def time_remaining(self) -> float:
            return 1.0

    async def measure() -> dict[str, float]:
        runtime = Runtime(load_adapters(), folder=policy)
        await runtime.apply(runtime.compile())
        dispatcher = RuntimeDispatcher(runtime, runtime.stats)
        cache = VerdictCache(10000, generation=lambda: runtime.generation)
        services = {
            "cache off": AuthorizationService(dispatcher, None, AuthzStats()),
            "cache on": AuthorizationService(dispatcher, cache, AuthzStats()),
        }
        context: Any = _Context()
        out = {}
        for name, service in services.items():
            samples = []
            for _ in range(5):
                t = time.perf_counter()
                for i in range(calls):
                    await service.check(bodies[i % len(bodies)], context)
                samples.append((time.perf_counter() - t) / calls * 1e6)
            out[name] = statistics.median(samples)
        await runtime.close()
        return out

    return asyncio.run(measure())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=3000, help="Check calls per client per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument(
        "--policy", default="policy5", choices=["policy5", "policy15"], help="a folder of bench/configs"
    )
    args = parser.parse_args()
    policy = CONFIGS / args.policy
    bodies = [envoy_request(n) for n in range(DISTINCT_REQUESTS)]
    # Every client warms up on the first requests, then cycles through all of them.
    cycled = bodies[:WARM_UP] + [bodies[i % len(bodies)] for i in range(args.calls)]

    cpu: dict[str, list[float]] = {}
    with (
        tempfile.TemporaryDirectory() as empty,
        server_process([str(HERE / "floor_server.py")], r"serving on (\S+)") as floor,
        server_process([*MIXERD, "--config", empty, "--authz-cache-size", "0"], MIXERD_READY) as norules,
        server_process([*MIXERD, "--config", str(policy), "--authz-cache-size", "0"], MIXERD_READY) as off,
        server_process([*MIXERD, "--config", str(policy)], MIXERD_READY) as on,
    ):
        on_metrics = _monitoring_url(on)
        runs = [
            ("floor", floor, FLOOR_CHECK),
            ("no rules", norules, AUTHZ_CHECK),
            ("cache off", off, AUTHZ_CHECK),
            ("cache on", on, AUTHZ_CHECK),
        ]
        for _ in range(args.rounds):
            for name, server, method in runs:
                used = drive(server, method, [cycled] * args.clients).cpu
                cpu.setdefault(name, []).append(used / (args.calls * args.clients) * 1e6)
        hits = _metric(on_metrics, "mixerd_authz_cache_hits_total")
        misses = _metric(on_metrics, "mixerd_authz_cache_misses_total")

    us = {name: statistics.median(samples) for name, samples in cpu.items()}
    floor_us = us["floor"]
    print(f"{args.rounds} rounds, {args.clients} client processes, {DISTINCT_REQUESTS} distinct requests")
    print("server CPU per ext_authz Check (median of rounds)")
    for name, value in us.items():
        ratio, above = value / floor_us, value - floor_us
        print(f"  {name:10s} {value:7.1f} us/call   {ratio:.2f}x floor   {above:+6.1f} us over it")
    above_off, above_on = us["cache off"] - floor_us, us["cache on"] - floor_us
    if above_on > 0:
        print(f"  above the floor: cache off / cache on = {above_off / above_on:.1f}x")
    else:
        print("  above the floor: cache on is within the floor's noise")
    print(f"  cache hits {hits:.0f}, misses {misses:.0f} (warm-up included)")

    handler = in_process(policy, bodies, 20000)
    print("in-process, the Check handler alone (median of 5 loops of 20000 calls)")
    for name, value in handler.items():
        print(f"  {name:10s} {value:6.2f} us/call")
    print(f"  cache off / cache on = {handler['cache off'] / handler['cache on']:.1f}x")


if __name__ == "__main__":
    main()
