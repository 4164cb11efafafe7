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
import tempfile
from pathlib import Path

import grpc
from _common import MIXERD_READY, MIXERD_SERVE, WARM_UP, redis_process, rounds_beside_redis, server_process

HERE = Path(__file__).resolve()
METHOD = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit"
SERVE = list(MIXERD_SERVE)

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


def request_bodies(client: int, calls: int) -> list[bytes]:
    """`WARM_UP + calls` requests for one client: its own 100 addresses, 100 users among all clients."""
    from mixerd.api.envoy.service.ratelimit.v3 import rls_pb2

    out = []
    for i in range(calls + WARM_UP):
        request = rls_pb2.RateLimitRequest(domain="edge")
        request.descriptors.add().entries.add(key="remote_address", value=f"10.0.{client}.{i % 100}")
        user = request.descriptors.add()
        user.entries.add(key="generic_key", value="api")
        user.entries.add(key="user", value=f"user-{(i * 7) % 100}")
        out.append(request.SerializeToString())
    return out


async def _floor(port: int) -> None:
    """A bare grpc.aio server whose ShouldRateLimit returns a constant (two OK statuses)."""
    from mixerd.api.envoy.service.ratelimit.v3 import rls_pb2

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

    def bodies_per_client() -> list[list[bytes]]:
        return [request_bodies(c, args.calls) for c in range(args.clients)]

    with tempfile.TemporaryDirectory() as work, redis_process(Path(work)) as store:
        folders = {}
        for adapter, params in (("memquota", "{}"), ("redisquota", f"{{redisServerUrl: '{store.url}'}}")):
            folder = Path(work) / adapter
            folder.mkdir()
            (folder / "ratelimit.yaml").write_text(CONFIG.format(adapter=adapter, params=params))
            folders[adapter] = folder
        with (
            server_process([str(HERE), "--floor-server"], r"serving on (\S+)") as floor,
            server_process([*SERVE, "--config", str(folders["memquota"])], MIXERD_READY) as mem,
            server_process([*SERVE, "--config", str(folders["redisquota"])], MIXERD_READY) as red,
        ):
            runs = [("floor", floor), ("memquota", mem), ("redisquota", red)]
            measured = rounds_beside_redis(runs, "redisquota", store, METHOD, bodies_per_client, args.rounds)

    print(f"{args.rounds} rounds, {args.clients} client processes, 2 counted descriptors per request")
    print("server CPU per ShouldRateLimit (median of rounds)")
    measured.print("request")


if __name__ == "__main__":
    main()
