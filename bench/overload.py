"""Overload: Check latency under sustained open-loop load past what one mixerd serves, with load shedding
on (the default) and off, in one run (issue 13's targets: admitted p99 under 150 ms, shed calls answered
within 50 ms).

mixerd runs a policy of `--rules` listchecker rules that all apply to every Check, so a Check costs
several times what gRPC itself costs (the bare grpc.aio floor, bench/floor_server.py): shedding a call
saves the work of admitting it only when that work dominates, and no server can shed load that costs it
more to refuse than it can refuse (the floor's capacity caps that).

1. Capacity, closed loop (h2load, 64 calls in flight, `--capacity-seconds`): the floor, and mixerd with
   shedding off. The offered load is `--factor` times mixerd's capacity; it must stay below the floor's.
2. Rounds: for each server (shedding on, shedding off) in turn, h2load sends Checks open loop at the
   offered load (`--rps` per connection, 20 connections) for `--seconds`, while a probe process sends one
   Check every 20 ms on a connection of its own, open loop too, and records each one's latency and
   status. The first 2 s of each phase are not counted (the queue of the shedding-off server is still
   growing then; it only grows after).

Printed per server: the probe's admitted (OK) and shed (UNAVAILABLE) latency, the share shed, and what
mixerd counted (Checks answered OK and shed per second). h2load needs Debian's `nghttp2-client`.

Usage: python bench/overload.py [--rules N] [--factor F] [--seconds S] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing as mp
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from _common import MIXERD_READY, MIXERD_SERVE, server_process

from mixerd.api.mixer.v1 import mixer_pb2
from mixerd.attribute import encode_attributes
from mixerd.testing import typical_http_bag

HERE = Path(__file__).resolve().parent
CHECK = "/istio.mixer.v1.Mixer/Check"
CONNECTIONS = 20
PROBE_EVERY = 0.020
SKIP = 2.0  # seconds at the start of each phase left out of the figures
_HEAD = "apiVersion: config.istio.io/v1alpha2\n"


def write_policy(folder: Path, rules: int) -> None:
    """`rules` listchecker rules, each with its own instance and match, all applying to every Check."""
    docs = [
        f"{_HEAD}kind: handler\nmetadata: {{name: lists, namespace: istio-system}}\nspec:\n"
        "  compiledAdapter: listchecker\n  params: {overrides: [a, b, c], blacklist: true}\n"
    ]
    for i in range(rules):
        docs.append(
            f"{_HEAD}kind: instance\nmetadata: {{name: v{i}, namespace: istio-system}}\nspec:\n"
            "  compiledTemplate: listentry\n"
            f'  params:\n    value: request.headers["x-key-{i}"] | source.principal | "none-{i}"\n'
        )
        docs.append(
            f"{_HEAD}kind: rule\nmetadata: {{name: r{i}, namespace: istio-system}}\nspec:\n"
            f'  match: request.path.startsWith("/") && destination.service.host != "svc-{i}.example"\n'
            "  actions: [{handler: lists.istio-system, instances: [v" + str(i) + "]}]\n"
        )
    (folder / "policy.yaml").write_text("---\n".join(docs))


def h2load(address: str, body: Path, *extra: str) -> str:
    url = f"http://{address}{CHECK}"
    headers = ["-H", "content-type: application/grpc", "-H", "te: trailers"]
    out = subprocess.run(["h2load", *extra, "-d", str(body), *headers, url], capture_output=True, text=True)
    return out.stdout


def capacity(address: str, body: Path, seconds: float) -> float:
    """Checks per second answered with 64 calls in flight (4 connections x 16 streams)."""
    out = h2load(address, body, "-D", f"{seconds:g}", "--warm-up-time", "1", "-c", "4", "-m", "16")
    match = re.search(r"finished in \S+, ([\d.]+) req/s", out)
    if not match:
        raise RuntimeError(f"h2load said:\n{out}")
    return float(match.group(1))


def metrics(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as answer:
        text = answer.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def _probe(address: str, body: bytes, seconds: float, ready: Any, go: Any, results: Any) -> None:
    """Once connected, sets `ready` and waits for `go`; then one Check every PROBE_EVERY s for `seconds`,
    open loop; puts [(start, latency, code name)]."""
    import grpc

    gc.disable()  # this process's own pauses would show up as latency

    async def run() -> list[tuple[float, float, str]]:
        samples: list[tuple[float, float, str]] = []
        async with grpc.aio.insecure_channel(address) as channel:
            call = channel.unary_unary(CHECK)
            await call(body, timeout=10)
            ready.set()
            await asyncio.to_thread(go.wait)

            async def one(start: float) -> None:
                code = "OK"
                try:
                    await call(body, timeout=10)
                except grpc.aio.AioRpcError as e:
                    code = e.code().name
                samples.append((start, time.perf_counter() - start, code))

            tasks = []
            begin = time.perf_counter()
            n = 0
            while (due := begin + n * PROBE_EVERY) < begin + seconds:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                tasks.append(asyncio.ensure_future(one(time.perf_counter())))
                n += 1
            await asyncio.gather(*tasks)
            return [(s - begin, lat, code) for s, lat, code in samples]

    results.put(asyncio.run(run()))


def phase(address: str, monitoring: str, body: bytes, body_file: Path, rps: float, seconds: float) -> dict:
    """Open-loop load plus the probe; what the probe saw and what mixerd counted, after SKIP seconds."""
    ctx = mp.get_context("spawn")
    results, ready, go = ctx.Queue(), ctx.Event(), ctx.Event()
    probe = ctx.Process(target=_probe, args=(address, body, seconds, ready, go, results))
    probe.start()
    if not ready.wait(60):
        raise RuntimeError("the probe process did not connect")
    per_connection = f"{rps / CONNECTIONS:.3f}"
    options = ["-D", f"{seconds:g}", "-c", str(CONNECTIONS), "-m", "200", "--rps", per_connection]
    headers = ["-H", "content-type: application/grpc", "-H", "te: trailers"]
    load = subprocess.Popen(
        ["h2load", *options, "-d", str(body_file), *headers, f"http://{address}{CHECK}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    go.set()
    time.sleep(SKIP)
    counted_from = metrics(monitoring)
    samples = [s for s in results.get(timeout=seconds + 60) if s[0] >= SKIP]
    after = metrics(monitoring)
    out, _ = load.communicate()
    probe.join()
    took = samples[-1][0] - SKIP if samples else seconds - SKIP
    ok_key = 'mixerd_check_requests_total{code="OK"}'
    shed_key = 'mixerd_shed_requests_total{api="istio.mixer.v1.Mixer/Check"}'
    done = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed", out)
    return {
        "admitted": [lat for _, lat, code in samples if code == "OK"],
        "shed": [lat for _, lat, code in samples if code == "UNAVAILABLE"],
        "other": sorted({code for _, _, code in samples if code not in ("OK", "UNAVAILABLE")}),
        "failed_other": sum(1 for s in samples if s[2] not in ("OK", "UNAVAILABLE")),
        "probes": len(samples),
        "ok_per_s": (after.get(ok_key, 0) - counted_from.get(ok_key, 0)) / took,
        "shed_per_s": (after.get(shed_key, 0) - counted_from.get(shed_key, 0)) / took,
        "h2load": done.groups() if done else (),
    }


def q(values: list[float], p: float) -> str:
    if not values:
        return "-"
    values = sorted(values)
    return f"{values[min(len(values) - 1, int(p * len(values)))] * 1e3:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rules", type=int, default=60)
    parser.add_argument("--factor", type=float, default=1.5, help="offered load / mixerd's capacity")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per phase")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--capacity-seconds", type=float, default=5.0)
    args = parser.parse_args()
    if shutil.which("h2load") is None:
        sys.exit("h2load is not installed: apt-get install -y nghttp2-client")

    message = mixer_pb2.CheckRequest(attributes=encode_attributes(typical_http_bag()), global_word_count=222)
    body = message.SerializeToString()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "policy"
        folder.mkdir()
        write_policy(folder, args.rules)
        body_file = Path(tmp) / "check.grpc"
        body_file.write_bytes(b"\0" + struct.pack(">I", len(body)) + body)  # gRPC's length prefix
        config = ["--config", str(folder), "--log-level", "error"]
        with (
            server_process([str(HERE / "floor_server.py")], r"serving on (\S+)") as floor,
            server_process([*MIXERD_SERVE, *config], MIXERD_READY) as on,
            server_process([*MIXERD_SERVE, *config, "--shed-latency", "0"], MIXERD_READY) as off,
        ):
            monitoring = {}
            for name, server in (("on", on), ("off", off)):
                assert server.proc.stdout is not None
                monitoring[name] = "http://" + server.proc.stdout.readline().rsplit("//", 1)[1].strip()
            floor_rate = capacity(floor.address, body_file, args.capacity_seconds)
            mixerd_rate = capacity(off.address, body_file, args.capacity_seconds)
            rps = args.factor * mixerd_rate
            print(
                f"capacity, 64 calls in flight: floor {floor_rate:.0f}/s, mixerd ({args.rules} rules) "
                f"{mixerd_rate:.0f}/s; offered load {rps:.0f}/s = {args.factor}x mixerd, "
                f"{rps / floor_rate:.2f}x the floor"
            )
            if rps >= floor_rate:
                print("  (the offered load is not below the floor's capacity: raise --rules)")
            runs: dict[str, list[dict]] = {"on": [], "off": []}
            for _ in range(args.rounds):
                for name, server in (("on", on), ("off", off)):
                    found = phase(server.address, monitoring[name], body, body_file, rps, args.seconds)
                    runs[name].append(found)
                    time.sleep(2)  # let a leftover queue drain

    print(f"\n{args.rounds} rounds of {args.seconds:.0f} s per server; probe: one Check every 20 ms")
    print(
        "| shedding | probe OK p50 / p99 / max (ms) | probe shed p50 / p99 / max (ms) | probes shed | "
        "mixerd OK/s | shed/s | probe other errors |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in ("on", "off"):
        for r in runs[name]:
            share = len(r["shed"]) / max(1, r["probes"])
            print(
                f"| {name} | {q(r['admitted'], 0.5)} / {q(r['admitted'], 0.99)} / {q(r['admitted'], 1.0)} | "
                f"{q(r['shed'], 0.5)} / {q(r['shed'], 0.99)} / {q(r['shed'], 1.0)} | {share:.0%} | "
                f"{r['ok_per_s']:.0f} | {r['shed_per_s']:.0f} | "
                f"{r['failed_other']} {' '.join(r['other'])} |"
            )
    for name in ("on", "off"):
        admitted = [x for r in runs[name] for x in r["admitted"]]
        shed = [x for r in runs[name] for x in r["shed"]]
        ok_per_s = statistics.median(r["ok_per_s"] for r in runs[name])
        print(
            f"all rounds, shedding {name}: admitted p50 {q(admitted, 0.5)} p99 {q(admitted, 0.99)} ms; "
            f"shed p50 {q(shed, 0.5)} p99 {q(shed, 0.99)} max {q(shed, 1.0)} ms; OK/s median {ok_per_s:.0f}"
        )
        for r in runs[name]:
            if r["h2load"]:
                _, started, done, _, failed = r["h2load"]
                print(f"  h2load: {started} started, {done} done, {failed} failed")


if __name__ == "__main__":
    main()
