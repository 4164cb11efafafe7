"""Server CPU per Check call and per reported bag, mixerd against the bare gRPC floor, in one run.

Both servers run as separate processes and get the same load from the same client processes: Check
with a typical 30-attribute bag, and Report with batches of 100 such bags. Server CPU is read from
/proc before and after each load phase, so client work does not count. Rounds alternate floor and
mixerd so that drift on a shared machine hits both; the medians and their ratio are printed.

Usage: python bench/rpc.py [--calls N] [--batches N] [--rounds N] [--clients N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from _common import MIXERD_READY, MIXERD_SERVE, drive, print_latencies, same_body, server_process

from mixerd.api.mixer.v1 import mixer_pb2
from mixerd.attribute import encode_attributes, encode_report
from mixerd.testing import typical_http_bag

HERE = Path(__file__).resolve().parent
CHECK = "/istio.mixer.v1.Mixer/Check"
REPORT = "/istio.mixer.v1.Mixer/Report"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000, help="Check calls per client per round")
    parser.add_argument("--batches", type=int, default=100, help="Report batches per client per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--clients", type=int, default=2, help="client processes (sync, 1 call in flight each)"
    )
    args = parser.parse_args()

    check_body = mixer_pb2.CheckRequest(
        attributes=encode_attributes(typical_http_bag()), global_word_count=222
    ).SerializeToString()
    report_body = encode_report([typical_http_bag(i) for i in range(100)]).SerializeToString()

    floor_args = [str(HERE / "floor_server.py")]
    # An empty config folder: the no-rules path (the embedded default would log every report).
    empty = tempfile.mkdtemp()
    mixerd_args = list(MIXERD_SERVE)
    mixerd_args += ["--config", empty]
    results: dict[str, dict[str, list[float]]] = {"floor": {}, "mixerd": {}}
    latencies: dict[str, list[float]] = {}
    with (
        server_process(floor_args, r"serving on (\S+)") as floor,
        server_process(mixerd_args, MIXERD_READY) as mixerd,
    ):
        for _ in range(args.rounds):
            for name, server in (("floor", floor), ("mixerd", mixerd)):
                cpu, lat, _ = drive(server, CHECK, same_body(check_body, args.calls, args.clients))
                results[name].setdefault("check", []).append(cpu / (args.calls * args.clients))
                latencies.setdefault(f"{name} check", []).extend(lat)
                cpu, lat, _ = drive(server, REPORT, same_body(report_body, args.batches, args.clients))
                results[name].setdefault("report", []).append(cpu / (args.batches * args.clients * 100))
                latencies.setdefault(f"{name} report", []).extend(lat)

    def med(name: str, kind: str) -> float:
        return statistics.median(results[name][kind]) * 1e6

    print(f"{args.rounds} rounds, {args.clients} client processes; server CPU (median of rounds)")
    floor_check, mixerd_check = med("floor", "check"), med("mixerd", "check")
    print(f"  Check  floor  {floor_check:7.1f} us/call")
    print(f"  Check  mixerd {mixerd_check:7.1f} us/call   ratio {mixerd_check / floor_check:.2f}x floor")
    floor_bag, mixerd_bag = med("floor", "report"), med("mixerd", "report")
    print(f"  Report floor  {floor_bag:7.1f} us/bag (100-bag batches)")
    print(
        f"  Report mixerd {mixerd_bag:7.1f} us/bag   ratio {mixerd_bag / floor_bag:.2f}x floor, "
        f"+{mixerd_bag - floor_bag:.1f} us/bag over it"
    )
    print_latencies(latencies, 14)


if __name__ == "__main__":
    main()
