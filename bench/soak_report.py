"""Memory over a long Report soak through Istio's telemetry config, with series expiry on (issue 5's
target: no growth over 10 minutes).

mixerd serves rules/istio with the prometheus expiry shortened to `--expiry` (Istio's is 10m) and gets
100-bag Reports continuously. The bags name a rolling set of destination services that changes every
`--churn` seconds, so new series keep being created and old ones must expire. Every 10 s the script
reads the server's resident memory (/proc VmRSS) and scrapes the endpoint to count the series. The
baseline is the first sample after one expiry period (warm: caches filled, first series expired); the
result is the last sample against it, and the largest.

Usage: python bench/soak_report.py [--seconds 600] [--expiry 30] [--churn 15] [--services 20]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import time
import urllib.request
from pathlib import Path

import grpc
from _common import MIXERD_READY, MIXERD_SERVE, server_process

from mixerd.attribute import encode_report
from mixerd.bundled import rules_folder
from mixerd.testing import typical_http_bag


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _series(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return sum(1 for line in r.read().decode().splitlines() if line.startswith("istio_"))


def _batch(generation: int, services: int, n: int) -> bytes:
    bags = []
    for i in range(100):
        bag = typical_http_bag(n + i)
        service = f"svc-{generation}-{i % services}"
        bag["destination.service.host"] = f"{service}.default.svc.cluster.local"
        bag["destination.service.name"] = service
        bags.append(bag)
    return encode_report(bags).SerializeToString()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--expiry", type=int, default=30, help="metricsExpiryDuration, seconds")
    parser.add_argument("--churn", type=float, default=15, help="seconds between new sets of services")
    parser.add_argument("--services", type=int, default=20, help="services per set")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "istio"
        shutil.copytree(rules_folder("istio"), config)
        path = config / "telemetry.yaml"
        text = path.read_text()
        assert 'metricsExpiryDuration: "10m"' in text
        path.write_text(
            text.replace('metricsExpiryDuration: "10m"', f'metricsExpiryDuration: "{args.expiry}s"')
        )
        port = _free_port()
        serve = list(MIXERD_SERVE)
        serve += ["--config", str(config), "--prometheus-port", str(port), "--log-level", "error"]
        with server_process(serve, MIXERD_READY) as server, grpc.insecure_channel(server.address) as channel:
            report = channel.unary_unary("/istio.mixer.v1.Mixer/Report")
            start = time.monotonic()
            samples: list[tuple[float, float, int]] = []
            next_sample, sent = start, 0
            while (now := time.monotonic()) - start < args.seconds:
                generation = int((now - start) // args.churn)
                report(_batch(generation, args.services, sent), timeout=30)
                sent += 100
                if now >= next_sample:
                    samples.append((now - start, _rss_mib(server.proc.pid), _series(port)))
                    next_sample += 10

    warm = next((s for s in samples if s[0] >= args.expiry + args.churn), samples[0])
    last = samples[-1]
    peak = max(s[1] for s in samples)
    print(f"{sent} reported requests in {args.seconds:.0f} s; expiry {args.expiry} s, ", end="")
    print(f"new services every {args.churn} s")
    print("  t (s)   RSS (MiB)   istio_* samples")
    for t, rss, series in [*samples[:: max(1, len(samples) // 12)], last]:
        print(f"  {t:5.0f}   {rss:9.1f}   {series:7d}")
    growth = last[1] / warm[1]
    print(
        f"RSS warm {warm[1]:.1f} MiB at {warm[0]:.0f} s, last {last[1]:.1f} MiB ({growth:.3f}x warm), ",
        end="",
    )
    print(f"peak {peak:.1f} MiB")


if __name__ == "__main__":
    main()
