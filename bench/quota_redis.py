"""Check with one quota: redisquota (a real redis-server) beside memquota and the bare gRPC floor, in one run.

Issue 6's targets: server CPU per Check with one Redis quota <= 1.6x the floor, p99 latency reported
beside memquota's, and exactly one Redis round trip per Check (counted with INFO commandstats).

Every Check carries its own deduplication id (as a proxy sends), asks for `requestcount` amount 1, and
the limits are high enough that nothing is denied, so every redisquota Check goes to Redis (the honest
cost; `--exhausted` instead sets a limit of 1 per minute, so the exhausted cache answers nearly all).
`mem+await` is memquota answering after one `await asyncio.sleep(0)`: the cost of the Check's coroutine
suspending once inside grpc.aio, which every backend reached over a socket pays. `mem+ping` is memquota
answering after one bare PING round trip to the same Redis: the least any quota kept in Redis costs the
server. Rounds alternate the servers; server CPU is read from /proc around each phase (mixerd's and,
for redisquota, redis-server's own).

Usage: python bench/quota_redis.py [--calls N] [--rounds N] [--clients N] [--exhausted]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import MIXERD_READY, SERVE, WARM_UP, redis_process, rounds_beside_redis, server_process

from mixerd.api.mixer.v1 import mixer_pb2
from mixerd.attribute import encode_attributes
from mixerd.testing import typical_http_bag

HERE = Path(__file__).resolve().parent
CHECK = "/istio.mixer.v1.Mixer/Check"
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

#: `mixerd serve` whose memquota answers after one PING round trip to Redis on a bare asyncio.Protocol
#: (the port is the first argument): the least a quota kept in Redis can cost, with no client library,
#: script or handler work. redisquota's distance from it is what its own code costs.
PINGED = (
    "import asyncio, sys\n"
    "from mixerd_adapters.memquota.handler import MemQuota\n"
    "port = int(sys.argv.pop(1))\n"
    "class Pong(asyncio.Protocol):\n"
    "    def __init__(self):\n"
    "        self.waiting = []\n"
    "    def connection_made(self, transport):\n"
    "        self.transport = transport\n"
    "    def data_received(self, data):\n"
    "        for _ in range(data.count(b'\\r\\n')):\n"
    "            self.waiting.pop(0).set_result(None)\n"
    "opened = []\n"
    "answer = MemQuota.handle_quota\n"
    "async def after_one_ping(self, instance, args):\n"
    "    loop = asyncio.get_running_loop()\n"
    "    if not opened:\n"
    "        opened.append(loop.create_task(loop.create_connection(Pong, '127.0.0.1', port)))\n"
    "    _, pong = await asyncio.shield(opened[0])\n"
    "    reply = loop.create_future()\n"
    "    pong.waiting.append(reply)\n"
    "    pong.transport.write(b'*1\\r\\n$4\\r\\nPING\\r\\n')\n"
    "    await reply\n"
    "    return answer(self, instance, args)\n"
    "MemQuota.handle_quota = after_one_ping\n"
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
    """`WARM_UP + calls` Checks for one client, each for the quota and with a deduplication id of its own."""
    request = mixer_pb2.CheckRequest(attributes=encode_attributes(typical_http_bag()), global_word_count=222)
    request.quotas["requestcount"].amount = 1
    out = []
    for i in range(calls + WARM_UP):
        request.deduplication_id = f"c{client}-{time.time_ns()}-{i}"
        out.append(request.SerializeToString())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000, help="Check calls per client per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument(
        "--exhausted", action="store_true", help="a used-up quota: the exhausted cache answers"
    )
    args = parser.parse_args()

    def bodies_per_client() -> list[list[bytes]]:
        return [check_bodies(c, args.calls) for c in range(args.clients)]

    with tempfile.TemporaryDirectory() as work, redis_process(Path(work)) as store:
        port = store.url.rsplit(":", 1)[1]
        folders = {}
        for adapter in ("memquota", "redisquota"):
            folder = Path(work) / adapter
            folder.mkdir()
            text = CONFIG.format(adapter=adapter, params=_params(adapter, store.url, args.exhausted))
            (folder / "quota.yaml").write_text(text)
            folders[adapter] = folder
        mem_config = str(folders["memquota"])
        with (
            server_process([str(HERE / "floor_server.py")], r"serving on (\S+)") as floor,
            server_process(["-m", "mixerd", *SERVE, "--config", mem_config], MIXERD_READY) as mem,
            server_process(["-c", SUSPENDED, *SERVE, "--config", mem_config], MIXERD_READY) as sus,
            server_process(["-c", PINGED, port, *SERVE, "--config", mem_config], MIXERD_READY) as ping,
            server_process(
                ["-m", "mixerd", *SERVE, "--config", str(folders["redisquota"])], MIXERD_READY
            ) as red,
        ):
            runs = [
                ("floor", floor),
                ("memquota", mem),
                ("mem+await", sus),
                ("mem+ping", ping),
                ("redisquota", red),
            ]
            measured = rounds_beside_redis(runs, "redisquota", store, CHECK, bodies_per_client, args.rounds)

    mode = "an exhausted quota (the cache answers)" if args.exhausted else "a quota that always has room"
    print(f"{args.rounds} rounds, {args.clients} client processes, {mode}")
    print("server CPU per Check (median of rounds)")
    measured.print("Check")


if __name__ == "__main__":
    main()
