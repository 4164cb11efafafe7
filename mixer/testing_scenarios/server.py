"""A real mixerd on a background event loop, for synchronous tests: `run_mixer(runtime)`.

The server runs the given Runtime (so a test chooses its adapters and clock) on free loopback ports,
on an event loop in a daemon thread; the test talks to it with grpc's sync client and reads its
/metrics. Leaving the `with` block stops the server and closes the runtime's handlers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
import urllib.request
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from prometheus_client.parser import text_string_to_metric_families

from ..runtime import Runtime
from ..server.app import RunningServer, start
from ..settings import Settings

T = TypeVar("T")

#: Loopback, free ports, no admin page, no waiting at shutdown, no folder watching (turn it on with
#: config_poll_interval), no load shedding (a pause of the test process, which the server shares, must
#: not turn a scenario's call into UNAVAILABLE; turn it on with shed_latency).
TEST_SETTINGS = Settings(
    address="127.0.0.1",
    port=0,
    monitoring_port=0,
    admin_port=-1,
    shutdown_grace=0.0,
    config_poll_interval=0.0,
    shed_latency=0.0,
)

_SAMPLE_KEY = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


class LoopThread:
    """An asyncio event loop running on a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="mixerd-scenario", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@dataclasses.dataclass
class RunningMixer:
    """A started mixerd: `.address` for gRPC, `.monitoring_url`, `.runtime`, and helpers."""

    running: RunningServer
    runtime: Runtime
    _loop: LoopThread

    @property
    def address(self) -> str:
        return self.running.address

    @property
    def monitoring_url(self) -> str:
        return self.running.monitoring_url

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the server's event loop (e.g. `runtime.reload()`) and return its result."""
        return self._loop.run(coro, timeout)

    def metrics_text(self) -> str:
        with urllib.request.urlopen(self.monitoring_url + "/metrics", timeout=5) as response:
            return response.read().decode()

    def metrics(self) -> dict[str, float]:
        """Every sample on /metrics, keyed `name` or `name{label="value",...}` (labels sorted)."""
        return parse_metrics(self.metrics_text())

    def metric(self, key: str) -> float:
        """One sample (0 when absent), e.g. metric('mixerd_config_loads_total')."""
        return self.metrics().get(normalize_metric_key(key), 0.0)

    def stop(self) -> None:
        self._loop.run(self.running.stop(0))


def parse_metrics(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[_key(sample.name, sample.labels)] = sample.value
    return out


def _key(name: str, labels: dict[str, str]) -> str:
    if not labels:
        return name
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def normalize_metric_key(key: str) -> str:
    """`name{b="2", a="1"}` -> `name{a="1",b="2"}`, the form `metrics()` uses."""
    m = _SAMPLE_KEY.match(key.strip())
    if m is None:
        raise ValueError(f'{key!r} is not a metric name with optional {{label="value",...}}')
    labels = {k: v for k, v in _LABEL.findall(m.group(2) or "")}
    return _key(m.group(1), labels)


@contextmanager
def run_mixer(runtime: Runtime, settings: Settings | None = None, **overrides: Any) -> Iterator[RunningMixer]:
    """Start mixerd on `runtime` (its folder is loaded if nothing is in force yet); stop it on exit.

    `settings` defaults to TEST_SETTINGS; keyword overrides replace single settings, e.g.
    `config_poll_interval=0.05` to have the runtime's folder watched.
    """
    loop = LoopThread()
    try:
        chosen = dataclasses.replace(settings or TEST_SETTINGS, **overrides)
        running = loop.run(start(chosen, runtime=runtime))
        mixer = RunningMixer(running, runtime, loop)
        try:
            yield mixer
        finally:
            mixer.stop()
    finally:
        loop.close()
