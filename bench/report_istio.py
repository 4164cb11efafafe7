"""Server CPU per reported request through Istio 1.4's default telemetry config, against the bare gRPC
floor and mixerd with no rules, in one run (issue 5's target: <= 100 us of server CPU per request).

The config is the rendered Istio config unchanged (tests/data/config/istio/): the prometheus handler with
its eight metrics, and kubernetesenv as the attribute generator. kubernetesenv needs a cluster, so this
script's own server process (`--serve`) registers a stub beside the built-in adapters: its handler knows
no pods and returns no attributes, so every `$out.*` binding takes its fallback (its 21 bindings are still
evaluated on every bag). Each Report carries 100 typical inbound HTTP bags (`typical_http_bag`): per bag,
attribute generation, six rule matches and four metric instances of 20 dimensions each, recorded in the
prometheus handler. Rounds alternate the three servers; medians and ratios are printed.

Usage: python bench/report_istio.py [--batches N] [--rounds N] [--clients N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import server_process
from rpc import REPORT, load

from mixerd.adapter import AdapterInfo, Duration
from mixerd.attribute import encode_report
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime
from mixerd.server.app import start
from mixerd.settings import Settings
from mixerd.testing import typical_http_bag

HERE = Path(__file__).resolve().parent
ISTIO = HERE.parent / "tests" / "data" / "config" / "istio"
MIXERD = ["-m", "mixerd", "serve", "--port", "0", "--monitoring-port", "0", "--address", "127.0.0.1"]
READY = r"serving istio\.mixer\.v1\.Mixer on (\S+)"
BAGS = 100

_FIVE_MINUTES = Duration(300 * 1_000_000_000)


@dataclass
class _KubeParams:
    kubeconfig_path: str = ""
    cache_refresh_duration: Duration = _FIVE_MINUTES
    cluster_registries_namespace: str = ""


class _NoPods:
    def handle_kubernetes(self, instance: Any) -> dict[str, Any]:
        return {}


async def serve() -> None:
    """mixerd on the Istio config, with the stub kubernetesenv; prints the usual ready lines."""
    stub = AdapterInfo("kubernetesenv", ("kubernetes",), _KubeParams, build=lambda env: _NoPods())
    runtime = Runtime({**load_adapters(), "kubernetesenv": stub}, folder=ISTIO)
    settings = Settings(
        address="127.0.0.1", port=0, monitoring_port=0, prometheus_port=0, config_poll_interval=0.0
    )
    running = await start(settings, runtime=runtime)
    for line in running.ready_lines():
        print(line, flush=True)
    await running.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=100, help="Report batches per client per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the Istio server process
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve())
        return

    body = encode_report([typical_http_bag(i) for i in range(BAGS)]).SerializeToString()
    cpu: dict[str, list[float]] = {}
    with (
        tempfile.TemporaryDirectory() as empty,
        server_process([str(HERE / "floor_server.py")], r"serving on (\S+)") as floor,
        server_process([*MIXERD, "--config", empty], READY) as norules,
        server_process([str(Path(__file__).resolve()), "--serve"], READY) as istio,
    ):
        runs = [("floor", floor), ("no rules", norules), ("Istio telemetry", istio)]
        for _ in range(args.rounds):
            for name, server in runs:
                used, _ = load(server, REPORT, body, args.batches, args.clients)
                cpu.setdefault(name, []).append(used / (args.batches * args.clients * BAGS) * 1e6)

    floor_us = statistics.median(cpu["floor"])
    print(
        f"{args.rounds} rounds, {args.clients} client processes, {BAGS}-bag Reports; "
        "server CPU per reported request (median of rounds)"
    )
    for name, samples in cpu.items():
        us = statistics.median(samples)
        print(f"  {name:16s} {us:7.1f} us/request   +{us - floor_us:6.1f} us over the floor")
    print(f"  (rounds: {', '.join(f'{k}: ' + ' '.join(f'{x:.1f}' for x in v) for k, v in cpu.items())})")


if __name__ == "__main__":
    sys.exit(main())
