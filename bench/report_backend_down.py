"""Report latency with the telemetry backends up and with them down, in one run (issue 5: Report latency
does not change when a backend is down).

One mixerd serves a config that sends every reported request to statsd (a metric) and to Fluentd (a log
entry). The backends are sinks run by this script: a UDP socket for statsd and a TCP listener that reads
and discards for Fluentd. Rounds alternate "up" (sinks running) and "down" (both sinks closed: statsd
datagrams are refused, Fluentd connections too, so the handlers' queues retry, fill and drop). The
client measures each 100-bag Report; medians and p99 per phase are printed, with the handlers' drop
counters to show the backends really were down.

Usage: python bench/report_backend_down.py [--rounds N] [--calls N]
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import grpc
from _common import MIXERD_READY, server_process

from mixerd.attribute import encode_report
from mixerd.testing import typical_http_bag

CONFIG = """\
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {{name: statsd}}
spec:
  compiledAdapter: statsd
  params:
    address: 127.0.0.1:{statsd}
    flushDuration: 100ms
    metrics:
      requestcount.instance.istio-system: {{type: COUNTER, nameTemplate: "requests.{{{{.destination}}}}"}}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {{name: requestcount}}
spec:
  compiledTemplate: metric
  params:
    value: "1"
    dimensions:
      destination: destination.service.name | "unknown"
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {{name: fluentd}}
spec:
  compiledAdapter: fluentd
  params: {{address: "127.0.0.1:{fluentd}", pushIntervalDuration: 100ms, instanceBufferSize: 20000}}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {{name: accesslog}}
spec:
  compiledTemplate: logentry
  params:
    severity: '"Info"'
    timestamp: request.time | timestamp("1970-01-01T00:00:00Z")
    variables:
      path: request.path | ""
      code: response.code | 0
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {{name: telemetry}}
spec:
  actions:
  - {{handler: statsd, instances: [requestcount]}}
  - {{handler: fluentd, instances: [accesslog]}}
"""


def _port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sinks:
    """A UDP sink on the statsd port and a discarding TCP listener on the Fluentd port, while started."""

    def __init__(self, statsd: int, fluentd: int) -> None:
        self.ports = (statsd, fluentd)
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", self.ports[0]))
        tcp = socket.socket()
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind(("127.0.0.1", self.ports[1]))
        tcp.listen()
        self._sockets = [udp, tcp]
        self._threads = [threading.Thread(target=self._drain, args=(udp,), daemon=True)]
        self._threads.append(threading.Thread(target=self._accept, args=(tcp,), daemon=True))
        for t in self._threads:
            t.start()

    def _drain(self, s: socket.socket) -> None:
        try:
            while s.recv(65536):
                pass
        except OSError:
            pass

    def _accept(self, s: socket.socket) -> None:
        try:
            while True:
                conn, _ = s.accept()
                self._sockets.append(conn)
                threading.Thread(target=self._drain, args=(conn,), daemon=True).start()
        except OSError:
            pass

    def stop(self) -> None:
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._sockets = []


def _dropped(monitoring: str) -> float:
    with urllib.request.urlopen(f"{monitoring}/metrics", timeout=10) as r:
        lines = r.read().decode().splitlines()
    return sum(
        float(line.split()[-1]) for line in lines if line.startswith("mixerd_adapter_delivery_dropped_total{")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--calls", type=int, default=300, help="100-bag Reports per phase")
    args = parser.parse_args()
    statsd, fluentd = _port(socket.SOCK_DGRAM), _port(socket.SOCK_STREAM)
    sinks = Sinks(statsd, fluentd)
    body = encode_report([typical_http_bag(i) for i in range(100)]).SerializeToString()
    latencies: dict[str, list[float]] = {"up": [], "down": []}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "telemetry.yaml").write_text(CONFIG.format(statsd=statsd, fluentd=fluentd))
        monitoring_port = _port(socket.SOCK_STREAM)
        serve = ["-m", "mixerd", "serve", "--port", "0", "--monitoring-port", str(monitoring_port)]
        serve += ["--admin-port", "0", "--address", "127.0.0.1", "--config", tmp, "--log-level", "error"]
        sinks.start()
        with server_process(serve, MIXERD_READY) as server, grpc.insecure_channel(server.address) as channel:
            report = channel.unary_unary("/istio.mixer.v1.Mixer/Report")
            for _ in range(50):
                report(body, timeout=30)
            for _ in range(args.rounds):
                for phase in ("up", "down"):
                    if phase == "down":
                        sinks.stop()
                        time.sleep(0.3)  # let the handlers notice
                    for _ in range(args.calls):
                        t = time.perf_counter()
                        report(body, timeout=30)
                        latencies[phase].append(time.perf_counter() - t)
                    if phase == "down":
                        sinks.start()
                        time.sleep(0.3)
            dropped = _dropped(f"http://127.0.0.1:{monitoring_port}")
    print(f"{args.rounds} rounds x {args.calls} Reports of 100 bags per phase; client-side latency (ms)")
    for phase, values in latencies.items():
        q = statistics.quantiles(values, n=100)
        print(f"  backends {phase:4s}  p50 {q[49] * 1e3:6.2f}   p99 {q[98] * 1e3:6.2f}")
    up, down = (statistics.median(latencies[p]) for p in ("up", "down"))
    print(f"  median down / up: {down / up:.2f}x; items the handlers dropped while down: {dropped:.0f}")


if __name__ == "__main__":
    main()
