"""Real receivers for integration tests, run as subprocesses on free loopback ports, always stopped.

- `StatsdDaemon`: the Etsy statsd daemon (npm `statsd`) with two backends: `statsd_json_backend.js`
  (one JSON line per flush: the counters, gauges and timers it understood) and its `repeater` (every
  datagram it receives, forwarded to a UDP socket here: the exact packets);
- `FluentReceiver`: `@fluent-org/logger`'s FluentServer, a Fluentd forward-protocol server, printing one
  JSON line per event it receives (`fluent_server.js`).

Both can be stopped mid-test and started again on the same port (fault tests). They are Node programs
installed by `install.sh` into `.peers/` (or $MIXERD_PEERS); `scripts/test` runs it before pytest, and
`ensure_installed()` runs it too when something is missing, so a plain `pytest` works the first time.

Test files load this module by path (tests have no packages): see `load()` in the integration tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PEERS = ROOT / os.environ.get("MIXERD_PEERS", ".peers")
NODE_MODULES = PEERS / "node" / "node_modules"
STATSD_MAIN = NODE_MODULES / "statsd" / "stats.js"
#: The counters (`<PROBE>.<n>`) the daemon fixture sends to learn that the daemon is up; left out of
#: every result.
PROBE = "mixerd-peer-probe"

_installed = False


def ensure_installed() -> None:
    """Install the receivers if they are missing (once per process); raise with npm's message on failure."""
    global _installed
    if _installed:
        return
    result = subprocess.run(
        [str(HERE / "install.sh")], capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"tests/peers/install.sh failed ({result.returncode}):\n{result.stderr}")
    _installed = True


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float = 5.0, what: str = "the receiver") -> Any:
    """Poll `condition` until it is truthy (and return it); AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class _Node:
    """A Node program whose stdout lines are read by a thread: JSON objects into `messages`."""

    def __init__(self, name: str, args: list[str]) -> None:
        self.name = name
        self.args = args
        self.messages: list[dict[str, Any]] = []
        self.output: list[str] = []  # every line, for error messages
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        ensure_installed()
        environment = {**os.environ, "NODE_PATH": str(NODE_MODULES)}
        self._process = subprocess.Popen(
            ["node", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=environment,
            cwd=str(NODE_MODULES.parent),
        )
        self._reader = threading.Thread(target=self._read, args=(self._process,), daemon=True)
        self._reader.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            message: Any = None
            with contextlib.suppress(ValueError):
                message = json.loads(line)
            with self._lock:
                self.output.append(line.rstrip("\n"))
                if isinstance(message, dict):
                    self.messages.append(message)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.messages)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def check_running(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            output = "\n".join(self.output)
            raise AssertionError(f"{self.name} exited ({self._process.returncode}):\n{output}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if self._reader is not None:
            self._reader.join(5)


class StatsdDaemon:
    """The Etsy statsd daemon on 127.0.0.1:`port` (UDP), flushing every `flush_ms` milliseconds."""

    def __init__(self, workdir: Path, flush_ms: int = 100) -> None:
        self.port = free_port(socket.SOCK_DGRAM)
        self._repeat = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._repeat.bind(("127.0.0.1", 0))
        self._repeat.settimeout(0.05)
        self._datagrams: list[bytes] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._repeat_reader = threading.Thread(target=self._read_repeats, daemon=True)
        self._repeat_reader.start()
        backend = HERE / "statsd_json_backend.js"
        config = {
            "port": self.port,
            "address": "127.0.0.1",
            "mgmt_address": "127.0.0.1",
            "mgmt_port": free_port(),
            "flushInterval": flush_ms,
            "deleteIdleStats": True,  # a flush shows only what arrived since the one before
            "backends": [str(backend), "./backends/repeater"],
            "repeater": [{"host": "127.0.0.1", "port": self._repeat.getsockname()[1]}],
        }
        path = workdir / f"statsd-{self.port}.json"
        path.write_text(json.dumps(config))  # the daemon reads its config as a JS object literal
        self._node = _Node("statsd daemon", [str(STATSD_MAIN), str(path)])
        self._starts = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the daemon and wait until a datagram sent to it comes back through the repeater."""
        self._node.start()
        self._starts += 1
        probe = f"{PROBE}.{self._starts}:1|c".encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:

            def answered() -> bool:
                self._node.check_running()
                with self._lock:
                    if probe in self._datagrams:
                        return True
                s.sendto(probe, ("127.0.0.1", self.port))
                return False

            wait_until(answered, 10, "the statsd daemon to start")

    def stop(self) -> None:
        self._node.stop()

    def close(self) -> None:
        self.stop()
        self._closed.set()
        self._repeat_reader.join(5)
        self._repeat.close()

    def __enter__(self) -> StatsdDaemon:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_repeats(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._repeat.recv(65_535)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._datagrams.append(data)

    # -- what the daemon received and understood ---------------------------------------------------

    def datagrams(self) -> list[bytes]:
        """Every datagram the daemon received (forwarded by its repeater), in order, without probes."""
        with self._lock:
            return [d for d in self._datagrams if not d.startswith(PROBE.encode())]

    def lines(self) -> list[str]:
        return [line for d in self.datagrams() for line in d.decode().split("\n")]

    def flushes(self) -> list[dict[str, Any]]:
        """The JSON backend's flush lines, in order."""
        return [m for m in self._node.snapshot() if "flush" in m]

    def counters(self) -> dict[str, float]:
        """Each counter summed over every flush (the daemon's own `statsd.*` counters left out)."""
        total: dict[str, float] = {}
        for flush in self.flushes():
            for name, value in flush["counters"].items():
                if not name.startswith(("statsd.", PROBE)):
                    total[name] = total.get(name, 0) + value
        return total

    def gauges(self) -> dict[str, float]:
        """Each gauge's last value."""
        last: dict[str, float] = {}
        for flush in self.flushes():
            last.update({k: v for k, v in flush["gauges"].items() if not k.startswith("statsd.")})
        return last

    def timers(self) -> dict[str, list[float]]:
        """Each timer's values over every flush, in the order the daemon kept them (sorted per flush)."""
        values: dict[str, list[float]] = {}
        for flush in self.flushes():
            for name, samples in flush["timers"].items():
                values.setdefault(name, []).extend(samples)
        return values


class FluentReceiver:
    """A Fluentd forward-protocol server on 127.0.0.1 (the port is chosen at the first start and kept)."""

    def __init__(self) -> None:
        self.port = 0
        self._node: _Node | None = None
        self._earlier: list[dict[str, Any]] = []  # events received by runs already stopped

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        node = _Node("fluent server", [str(HERE / "fluent_server.js"), str(self.port)])
        node.start()
        self._node = node

        def listening() -> int:
            node.check_running()
            return next((int(m["listening"]) for m in node.snapshot() if "listening" in m), 0)

        self.port = wait_until(listening, 10, "the Fluentd forward server to start")

    def stop(self) -> None:
        if self._node is not None:
            self._node.stop()
            self._earlier.extend(self._events(self._node))
            self._node = None

    def __enter__(self) -> FluentReceiver:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def _events(node: _Node) -> list[dict[str, Any]]:
        return [m for m in node.snapshot() if "tag" in m]

    def events(self) -> list[dict[str, Any]]:
        """Every event received, over every run, in order: {"tag", "time", "record"}."""
        current = self._events(self._node) if self._node is not None else []
        return self._earlier + current


class PrometheusServer:
    """A real Prometheus server (Debian's `prometheus`) scraping one target every 200 ms, on a free port,
    with its data in `folder`; `query(expr)` asks its HTTP API. Stopped (SIGTERM) on leaving the block."""

    def __init__(self, folder: Path, target: str) -> None:
        ensure_installed()
        self.folder = folder
        self.target = target
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrometheusServer:
        config = self.folder / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 200ms, scrape_timeout: 150ms, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: mixerd\n    static_configs: [{{targets: ['{self.target}']}}]\n"
        )
        self._log = open(self.folder / "prometheus.log", "wb")  # closed in __exit__
        self._proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={self.folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._ready, timeout=30, what="prometheus to be ready")
        return self

    def _ready(self) -> bool:
        assert self._proc is not None
        if self._proc.poll() is not None:
            raise RuntimeError(f"prometheus exited: {(self.folder / 'prometheus.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector `expr` evaluates to: [{"metric": {...labels}, "value": [time, "text"]}]."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()
