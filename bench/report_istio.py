"""Server CPU per reported request through Istio 1.4's default telemetry config, against the bare gRPC
floor and mixerd with no rules, in one run (issue 5's target: <= 100 us of server CPU per request).

The config is the rendered Istio config unchanged (rules/istio/): the prometheus handler with its eight
metrics, and kubernetesenv as the attribute generator. Outside a cluster kubernetesenv is unavailable and
returns no attributes, so every `$out.*` binding takes its fallback (its 21 bindings are still evaluated
on every bag). Each Report carries 100 typical inbound HTTP bags (`typical_http_bag`): per bag,
attribute generation, six rule matches and four metric instances of 20 dimensions each, recorded in the
prometheus handler. Rounds alternate the three servers; medians and ratios are printed.

Usage: python bench/report_istio.py [--batches N] [--rounds N] [--clients N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from _common import MIXERD_READY, MIXERD_SERVE, drive, same_body, server_process
from rpc import REPORT

from mixerd.attribute import encode_report
from mixerd.bundled import rules_folder
from mixerd.testing import typical_http_bag

HERE = Path(__file__).resolve().parent
ISTIO = rules_folder("istio")
MIXERD = list(MIXERD_SERVE)
BAGS = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=100, help="Report batches per client per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()

    body = encode_report([typical_http_bag(i) for i in range(BAGS)]).SerializeToString()
    cpu: dict[str, list[float]] = {}
    with (
        tempfile.TemporaryDirectory() as empty,
        server_process([str(HERE / "floor_server.py")], r"serving on (\S+)") as floor,
        server_process([*MIXERD, "--config", empty], MIXERD_READY) as norules,
        server_process([*MIXERD, "--config", str(ISTIO), "--prometheus-port", "0"], MIXERD_READY) as istio,
    ):
        runs = [("floor", floor), ("no rules", norules), ("Istio telemetry", istio)]
        for _ in range(args.rounds):
            for name, server in runs:
                used = drive(server, REPORT, same_body(body, args.batches, args.clients)).cpu
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
