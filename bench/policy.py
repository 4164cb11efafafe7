"""Server CPU per Check through a 5-rule policy (denier, listchecker, memquota), against the bare gRPC
floor and mixerd with no rules, in one run (issue 4's target: policy <= 1.5x the floor).

The policy is bench/configs/policy5/: two denier rules (matches evaluated, not triggered), two
listchecker rules (IP whitelist, user-agent blacklist) and a memquota rate limit; each Check asks for
the `requestcount` quota with a deduplication id of its own (as a proxy sends; a repeated id would be
answered from memquota's dedup memory). Rounds alternate the three servers; medians and ratios are printed.

Usage: python bench/policy.py [--calls N] [--rounds N] [--clients N]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import MIXERD_READY, MIXERD_SERVE, drive, print_against_floor, same_body, server_process
from quota_redis import check_bodies
from rpc import CHECK

from mixerd.api.mixer.v1 import mixer_pb2
from mixerd.attribute import encode_attributes
from mixerd.testing import typical_http_bag

HERE = Path(__file__).resolve().parent
MIXERD = list(MIXERD_SERVE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000, help="Check calls per client per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()

    plain = mixer_pb2.CheckRequest(
        attributes=encode_attributes(typical_http_bag()), global_word_count=222
    ).SerializeToString()

    cpu: dict[str, list[float]] = {}
    with (
        tempfile.TemporaryDirectory() as empty,
        server_process([str(HERE / "floor_server.py")], r"serving on (\S+)") as floor,
        server_process([*MIXERD, "--config", empty], MIXERD_READY) as norules,
        server_process([*MIXERD, "--config", str(HERE / "configs" / "policy5")], MIXERD_READY) as policy,
    ):
        runs = [("floor", floor), ("no rules", norules), ("5-rule policy", policy)]
        for _ in range(args.rounds):
            for name, server in runs:
                if name == "5-rule policy":
                    bodies = [check_bodies(c, args.calls) for c in range(args.clients)]
                else:
                    bodies = same_body(plain, args.calls, args.clients)
                used = drive(server, CHECK, bodies).cpu
                cpu.setdefault(name, []).append(used / (args.calls * args.clients) * 1e6)

    print(f"{args.rounds} rounds, {args.clients} client processes; server CPU per Check (median of rounds)")
    print_against_floor(cpu, 14)


if __name__ == "__main__":
    main()
