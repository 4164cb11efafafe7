"""The stdio handler: turns logentry and metric instances into lines, queued and written in the background.

Report never waits on the output (DESIGN.md decision 6): a handler call only encodes lines and appends
them to a bounded queue; a background job writes the queue out at least every FLUSH_INTERVAL_S, in a
worker thread so that a slow terminal or disk never stalls the event loop; close() writes what is left.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Mapping

from mixerd.adapter import Env, InstanceInfo, LogEntryInstance, MetricInstance, ValueType

from . import encode
from .params import Level, Params
from .sinks import Sink, open_sink

FLUSH_INTERVAL_S = 0.1
#: Lines queued at most; beyond that new entries are dropped (and counted in a warning).
MAX_QUEUED_LINES = 100_000

_NO_KEYS: frozenset[str] = frozenset()


class StdioHandler:
    def __init__(self, env: Env, sink: Sink) -> None:
        params: Params = env.params
        self._env = env
        self._sink = sink
        self._as_json = params.output_as_json
        self._output_level = params.output_level
        self._metric_level = params.metric_level
        self._exact = dict(params.severity_levels)
        self._folded: dict[str, Level] = {}
        for name, level in sorted(params.severity_levels.items()):
            self._folded.setdefault(name.lower(), level)
        self._ip_keys, self._ip_values = _ip_fields(env.instances)
        self._queue: collections.deque[str] = collections.deque()
        self._dropped = 0
        self._write_lock = threading.Lock()  # one writer at a time: the periodic flush or close()
        self._closed = False

    def severity(self, name: str) -> Level:
        """The level of a logentry severity: exact match, then case-insensitive, else INFO."""
        level = self._exact.get(name)
        if level is None:
            level = self._folded.get(name.lower(), Level.INFO)
        return level

    def handle_logentry(self, instances: list[LogEntryInstance]) -> None:
        for instance in instances:
            level = self.severity(instance.severity)
            if level < self._output_level:
                continue
            keys = self._ip_keys.get(instance.name, _NO_KEYS)
            fields = encode.fields_json(sorted(instance.variables.items()), keys)
            self._enqueue(encode.line(self._as_json, level, instance.timestamp, instance.name, fields))

    def handle_metric(self, instances: list[MetricInstance]) -> None:
        level = self._metric_level
        if level < self._output_level:
            return
        for instance in instances:
            value = '"value":' + encode.value_json(instance.value, instance.name in self._ip_values)
            keys = self._ip_keys.get(instance.name, _NO_KEYS)
            dimensions = encode.fields_json(sorted(instance.dimensions.items()), keys)
            fields = f"{value},{dimensions}" if dimensions else value
            self._enqueue(encode.line(self._as_json, level, self._env.clock(), instance.name, fields))

    def _enqueue(self, text: str) -> None:
        if self._closed or len(self._queue) >= MAX_QUEUED_LINES:
            self._dropped += 1
            return
        self._queue.append(text)

    def write_queued(self) -> None:
        """Write every queued line to the sink (blocking; run off the event loop)."""
        with self._write_lock:
            self._write_locked()

    def _write_locked(self) -> None:
        lines: list[str] = []
        try:
            while True:
                lines.append(self._queue.popleft())  # popleft and append are atomic: no lost lines
        except IndexError:
            pass
        if lines and self._sink is not None:
            self._sink.write(lines)

    async def flush(self) -> None:
        """The periodic job: report drops, then write the queue in a worker thread."""
        if self._dropped:
            dropped, self._dropped = self._dropped, 0
            self._env.logger.warning("%s: output fell behind; dropped %d entries", self._env.handler, dropped)
        if self._queue:
            await asyncio.to_thread(self.write_queued)

    async def close(self) -> None:
        """Write what is queued and close the output (a file; stdout and stderr stay open). Idempotent."""
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._finish)

    def _finish(self) -> None:
        with self._write_lock:
            self._write_locked()
            sink, self._sink = self._sink, None
            if sink is not None:
                sink.close()


def _ip_fields(instances: Mapping[str, InstanceInfo]) -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    """From the inferred types: per instance, the variables/dimensions that hold IP addresses, and the
    metric instances whose value is one."""
    keys: dict[str, frozenset[str]] = {}
    values: set[str] = set()
    for name, info in instances.items():
        types = info.types
        fields = types.get("variables") if info.template == "logentry" else types.get("dimensions")
        if isinstance(fields, Mapping):
            keys[name] = frozenset(k for k, t in fields.items() if t == ValueType.IP_ADDRESS)
        if info.template == "metric" and types.get("value") == ValueType.IP_ADDRESS:
            values.add(name)
    return keys, frozenset(values)


def build(env: Env) -> StdioHandler:
    handler = StdioHandler(env, open_sink(env.params, env.clock))
    env.every(FLUSH_INTERVAL_S, handler.flush, name=f"{env.handler} stdio flush")
    return handler
