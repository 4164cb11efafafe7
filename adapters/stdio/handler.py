"""The stdio handler: turns logentry and metric instances into lines, queued and written in the background.

Report never waits on the output (DESIGN.md decision 6): a handler call only encodes lines and puts
them in a BatchQueue of MAX_QUEUED_LINES (a full queue drops and counts). The queue's background task
writes them at least every FLUSH_INTERVAL_S, in a worker thread so that a slow terminal or disk never
stalls the event loop, and retries a failed write with back-off; close() writes what is left.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping

from mixerd.adapter import BatchQueue, Env, InstanceInfo, LogEntryInstance, MetricInstance, ValueType

from . import encode
from .params import Level, Params
from .sinks import Sink, open_sink

FLUSH_INTERVAL_S = 0.1
#: Lines queued at most; beyond that new entries are dropped (and counted in a warning).
MAX_QUEUED_LINES = 100_000
#: Lines written at most per write; a write also happens every FLUSH_INTERVAL_S.
LINES_PER_WRITE = 10_000
#: How long close() tries to write what is still queued.
CLOSE_TIMEOUT_S = 5.0

_NO_KEYS: frozenset[str] = frozenset()


class StdioHandler:
    def __init__(self, env: Env, sink: Sink) -> None:
        params: Params = env.params
        self._env = env
        self._sink: Sink | None = sink
        self._as_json = params.output_as_json
        self._output_level = params.output_level
        self._metric_level = params.metric_level
        self._exact = dict(params.severity_levels)
        self._folded: dict[str, Level] = {}
        for name, level in sorted(params.severity_levels.items()):
            self._folded.setdefault(name.lower(), level)
        self._ip_keys, self._ip_values = _ip_fields(env.instances)
        self._write_lock = threading.Lock()  # one write at a time, even when a cancelled one still runs
        self._drops_reported = 0
        self._closed = False
        self._queue: BatchQueue[str] = BatchQueue(
            env,
            self._write,
            capacity=MAX_QUEUED_LINES,
            batch_size=LINES_PER_WRITE,
            flush_interval=FLUSH_INTERVAL_S,
            log_drops=False,  # said at the next write, as how far the output fell behind
            name=f"{env.handler} stdio writes",
        )

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
            self._queue.put(encode.line(self._as_json, level, instance.timestamp, instance.name, fields))

    def handle_metric(self, instances: list[MetricInstance]) -> None:
        level = self._metric_level
        if level < self._output_level:
            return
        for instance in instances:
            value = '"value":' + encode.value_json(instance.value, instance.name in self._ip_values)
            keys = self._ip_keys.get(instance.name, _NO_KEYS)
            dimensions = encode.fields_json(sorted(instance.dimensions.items()), keys)
            fields = f"{value},{dimensions}" if dimensions else value
            self._queue.put(encode.line(self._as_json, level, self._env.clock(), instance.name, fields))

    def _write(self, lines: list[str]) -> None:
        """Write `lines` to the sink (in a worker thread); raises when the sink does, so they are retried."""
        with self._write_lock:
            dropped = self._queue.stats.dropped - self._drops_reported
            if dropped:
                self._drops_reported += dropped
                self._env.logger.warning(
                    "%s: output fell behind; dropped %d entries", self._env.handler, dropped
                )
            if self._sink is not None:
                self._sink.write(lines)

    def delivery_stats(self) -> Mapping[str, int]:
        """The queue's counters, in lines: queued, sent (written), dropped (queue full), failed (writes)."""
        return self._queue.delivery_stats()

    async def flush(self, timeout: float = 5.0) -> bool:
        """Write what is queued now (True), or give up after `timeout` seconds (False)."""
        return await self._queue.flush(timeout)

    async def close(self) -> None:
        """Write what is queued (for at most CLOSE_TIMEOUT_S) and close the output (a file; stdout and
        stderr stay open). Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._queue.close(CLOSE_TIMEOUT_S)
        await asyncio.to_thread(self._close_sink)

    def _close_sink(self) -> None:
        with self._write_lock:
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
    return StdioHandler(env, open_sink(env.params, env.clock))
