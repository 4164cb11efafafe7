"""How long Check stalls while mixerd reloads a large config: Check latency during each reload against
the same server's latency with no reload under way, in one run (issue 13's target: a reload never
stalls Check for more than a few milliseconds at a time).

The config has `--rules` rules over `--namespaces` namespaces (each rule with its own match and
listentry instance over one shared listchecker handler, as in bench/config_load.py); the Checks come
from namespace `default`, so each evaluates only its own namespace's rules and the baseline stays
cheap. One client sends Checks back to back (one in flight) for the whole run; a reload is started by
rewriting one file (the server re-reads and recompiles the whole folder) and lasts until the server
counts it in `mixerd_config_loads_total`. Printed: the baseline's p50 / p99 / max latency, then each
reload's duration and the max and p99 latency of the Checks sent during it, and for each what the
server logged of itself (bench/_instrumented_serve.py): its full garbage collections, its longest
collection, and how late its event loop ran at worst (a 1 ms heartbeat), so a server's own pause can be
told from the machine's or the client's.

Usage: python bench/reload_stall.py [--rules N] [--namespaces N] [--reloads N] [--baseline SECONDS]
"""

from __future__ import annotations

import argparse
import gc
import re
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import grpc
from _common import MIXERD_READY, SERVE, server_process
from rpc import CHECK

from mixerd.api.mixer.v1 import mixer_pb2
from mixerd.attribute import encode_attributes
from mixerd.testing import typical_http_bag

HERE = Path(__file__).resolve().parent
# Load shedding off: this measures the stall itself (with it on, a Check that met a stall could be
# answered UNAVAILABLE instead, and the client here sends one call at a time).
SERVE_NO_SHEDDING = [*SERVE, "--shed-latency", "0"]
_HEAD = "apiVersion: config.istio.io/v1alpha2\n"


def write_config(folder: Path, rules: int, namespaces: int, version: int) -> None:
    """Ten files of rules; `version` only changes a comment, so every reload compiles the same config."""
    docs = [
        f"{_HEAD}kind: handler\nmetadata: {{name: lists, namespace: istio-system}}\nspec:\n"
        "  compiledAdapter: listchecker\n  params: {overrides: [a, b, c], blacklist: true}\n"
    ]
    for i in range(rules):
        ns = "default" if i % namespaces == 0 else f"ns{i % namespaces}"
        docs.append(
            f"{_HEAD}kind: instance\nmetadata: {{name: v{i}, namespace: {ns}}}\nspec:\n"
            f"  compiledTemplate: listentry\n"
            f'  params:\n    value: request.headers["x-key-{i}"] | source.principal | "none-{i}"\n'
        )
        docs.append(
            f"{_HEAD}kind: rule\nmetadata: {{name: r{i}, namespace: {ns}}}\nspec:\n"
            f'  match: destination.service.host == "svc-{i}.{ns}.svc.cluster.local" && '
            f'request.path.startsWith("/api/{i}/")\n'
            f"  actions: [{{handler: lists.istio-system, instances: [v{i}]}}]\n"
        )
    for n in range(10):
        (folder / f"part{n}.yaml").write_text(f"# version {version}\n" + "---\n".join(docs[n::10]))


class Checker(threading.Thread):
    """Sends Checks one at a time until stopped; records (start, latency) of each."""

    def __init__(self, address: str) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        body = mixer_pb2.CheckRequest(
            attributes=encode_attributes(typical_http_bag()), global_word_count=222
        ).SerializeToString()
        with grpc.insecure_channel(self.address) as channel:
            call = channel.unary_unary(CHECK)
            for _ in range(50):  # warm up
                call(body, timeout=30)
            while not self.stop.is_set():
                t = time.perf_counter()
                call(body, timeout=30)
                self.samples.append((t, time.perf_counter() - t))

    def between(self, start: float, end: float) -> list[float]:
        return [lat for t, lat in list(self.samples) if start <= t <= end]


def loads(monitoring_port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{monitoring_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    match = re.search(r"^mixerd_config_loads_total (\S+)$", text, re.MULTILINE)
    return int(float(match.group(1))) if match else 0


def _pauses(log: Path, start: float, end: float) -> str:
    """What the server's log says of [start, end]: its full collections and its longest pauses."""
    full, longest_gc, longest_lag = [], 0.0, 0.0
    for line in log.read_text().splitlines():
        at, kind, *rest = line.split()
        if not start <= float(at) <= end:
            continue
        if kind == "gc":
            generation, took = int(rest[0]), float(rest[1])
            longest_gc = max(longest_gc, took)
            if generation == 2:
                full.append(took)
        else:
            longest_lag = max(longest_lag, float(rest[0]))
    listed = ", ".join(f"{x:.0f}" for x in full) or "none"
    return (
        f"full collections {len(full)} ({listed} ms), longest collection {longest_gc:.1f} ms, "
        f"event loop late by up to {longest_lag:.1f} ms"
    )


def ms(values: list[float], q: float) -> str:
    if not values:
        return "   -  "
    return f"{sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1e3:6.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rules", type=int, default=5000)
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--reloads", type=int, default=5)
    parser.add_argument("--baseline", type=float, default=3.0, help="seconds of Checks with no reload")
    args = parser.parse_args()
    gc.disable()  # this process's own collections (tens of ms) would show up as Check latency
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_config(folder, args.rules, args.namespaces, 0)
        size = sum(p.stat().st_size for p in folder.iterdir())
        pauses = Path(tmp) / "pauses.log"  # the server's collections and event-loop lags
        server_args = [str(HERE / "_instrumented_serve.py"), str(pauses), *SERVE_NO_SHEDDING]
        server_args += ["--config", str(folder), "--config-poll-interval", "0.1", "--log-level", "warning"]
        with server_process(server_args, MIXERD_READY) as server:
            assert server.proc.stdout is not None
            monitoring = int(server.proc.stdout.readline().rsplit(":", 1)[1])
            checker = Checker(server.address)
            checker.start()
            time.sleep(1.0)
            t0, wall0 = time.perf_counter(), time.time()
            time.sleep(args.baseline)
            baseline = checker.between(t0, time.perf_counter())
            windows = [(wall0, time.time())]
            reloads = []
            for version in range(1, args.reloads + 1):
                before = loads(monitoring)
                start, wall = time.perf_counter(), time.time()
                write_config(folder, args.rules, args.namespaces, version)
                while loads(monitoring) == before:
                    time.sleep(0.02)
                end = time.perf_counter()
                reloads.append((end - start, checker.between(start, end)))
                windows.append((wall, time.time()))
                time.sleep(1.0)  # let the old table's handlers retire before the next
            checker.stop.set()
            checker.join(30)
        server_pauses = [_pauses(pauses, *window) for window in windows]
    print(f"{args.rules} rules in {args.namespaces} namespaces, {size / 1e6:.1f} MB of YAML in 10 files")
    print(
        f"baseline, no reload: {len(baseline)} Checks, p50 {ms(baseline, 0.5)} ms, "
        f"p99 {ms(baseline, 0.99)} ms, max {ms(baseline, 1.0)} ms; server: {server_pauses[0]}"
    )
    for n, (seconds, during) in enumerate(reloads, 1):
        slow = sum(1 for x in during if x > 0.02)
        print(
            f"reload {n}: {seconds:5.2f} s (with 0.1 s poll + 0.2 s settle), {len(during)} Checks, "
            f"p50 {ms(during, 0.5)} ms, p99 {ms(during, 0.99)} ms, max {ms(during, 1.0)} ms, {slow} > 20 ms"
        )
        print(f"  server: {server_pauses[n]}")
    worst = max(max(d) for _, d in reloads if d)
    print(f"worst Check during any reload: {worst * 1e3:.1f} ms (baseline max {max(baseline) * 1e3:.1f} ms)")
    print(f"median reload max: {statistics.median(max(d) for _, d in reloads if d) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
