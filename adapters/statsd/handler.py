"""The statsd handler: metric instances become statsd lines, sent in UDP datagrams in the background.

Report never waits on statsd (DESIGN.md decision 6): `handle_metric` formats lines (with the `statsd`
library's client: prefix, sample rate and sampling, negative gauges) and puts them in a BatchQueue.
The queue's background task takes up to LINES_PER_SEND lines at least every `flushDuration` (sooner
when that many are waiting), packs them into datagrams of at most `flushBytes` and sends them from a
worker thread. A refused datagram fails the send: the queue retries it with back-off, and drops (and
counts) new lines once MAX_QUEUED_LINES are waiting.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from statsd.client.base import PipelineBase, StatsClientBase

from mixerd.adapter import BatchQueue, Duration, Env, MetricInstance, SendProgress, Timestamp

from .params import MAX_UDP_PAYLOAD, MetricType, Params, split_address
from .template import NameTemplate, parse
from .udp import UdpSender, packets

#: Lines waiting at most; beyond that new lines are dropped and counted.
MAX_QUEUED_LINES = 10_000
#: Lines taken per send (many datagrams); a send also happens every flushDuration.
LINES_PER_SEND = 1_000
#: Back-off between retries of a refused send: doubling from the first to the second.
RETRY_INITIAL_S = 0.1
RETRY_MAX_S = 2.0
#: How long close() tries to deliver what is still queued.
CLOSE_TIMEOUT_S = 2.0

_NS_PER_MS = 1_000_000


class _Lines(StatsClientBase):
    """The statsd library's client, whose "send" collects the finished lines instead."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix or None
        self.lines: list[str] = []

    def _send(self, data: str) -> None:  # type: ignore[override]
        self.lines.append(data)

    def pipeline(self) -> _Pipeline:
        return _Pipeline(self)

    def take(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines


class _Pipeline(PipelineBase):
    """What the library's gauge() uses for a negative value (`0|g` then `-5|g`): lines in order."""

    def _send(self) -> None:  # type: ignore[override]
        self._client.lines.extend(self._stats)
        self._stats.clear()


@dataclass(frozen=True)
class _Metric:
    type: MetricType
    template: NameTemplate | None  # None: the name is the instance's name


class StatsdHandler:
    """`sender` replaces the UDP socket (tests)."""

    def __init__(self, env: Env, sender: UdpSender | None = None) -> None:
        params: Params = env.params
        self._env = env
        self._rate = params.sampling_rate
        self._max_bytes = params.flush_bytes
        self._metrics = {
            name: _Metric(info.type, parse(info.name_template) if info.name_template else None)
            for name, info in params.metrics.items()
        }
        self._lines = _Lines(params.prefix)
        self._udp = sender or UdpSender(*split_address(params.address))
        self._send_lock = threading.Lock()  # one send at a time, even when a cancelled one still runs
        self._progress = SendProgress()
        self.skipped = 0  # instances not sent: no metrics entry, or a value the type cannot take
        self._skipped_logged = 0
        self._closed = False
        self._queue: BatchQueue[str] = BatchQueue(
            env,
            self._send,
            capacity=MAX_QUEUED_LINES,
            batch_size=LINES_PER_SEND,
            flush_interval=params.flush_duration / 1e9,
            retry_initial=RETRY_INITIAL_S,
            retry_max=RETRY_MAX_S,
            name=f"{env.handler} statsd delivery",
        )

    # -- the request path: format and queue, never wait ---------------------------------------------

    def handle_metric(self, instances: list[MetricInstance]) -> None:
        out = self._lines
        rate = self._rate
        for instance in instances:
            metric = self._metrics.get(instance.name)
            if metric is None:
                # validate() refuses such a config, so only a handler used without it gets here
                self.skipped += 1
                self._env.logger.debug("%s: no metrics entry for %s", self._env.handler, instance.name)
                continue
            name = instance.name if metric.template is None else metric.template.render(instance.dimensions)
            value = instance.value
            if metric.type == MetricType.DISTRIBUTION and isinstance(value, Duration):
                out.timing(name, int(value) / _NS_PER_MS, rate)
            elif not _is_int64(value):
                self._skip(instance.name, metric.type, value)
            elif metric.type == MetricType.GAUGE:
                out.gauge(name, value, rate)
            else:  # COUNTER, or a DISTRIBUTION of an integer
                out.incr(name, value, rate)
        lines = out.take()
        for line in lines:
            # (a character is at most 4 bytes in UTF-8: most lines need no encoding to know)
            if len(line) > MAX_UDP_PAYLOAD // 4 and len(line.encode("utf-8")) > MAX_UDP_PAYLOAD:
                self._skip(line[: line.index(":")], None, "a line too long for a UDP datagram")
            else:
                self._queue.put(line)

    def _skip(self, name: str, kind: MetricType | None, value: Any) -> None:
        self.skipped += 1
        # Log at powers of ten so a misconfigured metric does not flood the log.
        if self.skipped >= max(1, self._skipped_logged * 10):
            self._skipped_logged = self.skipped
            reason = value if kind is None else f"{kind.name} needs an integer value, got {_describe(value)}"
            self._env.logger.warning(
                "%s: not sent: %s: %s (%d skipped so far)", self._env.handler, name, reason, self.skipped
            )

    # -- the background side ---------------------------------------------------------------------------

    def _send(self, batch: list[str]) -> None:
        """Send `batch` as datagrams (in a worker thread); raises when one is refused."""
        with self._send_lock:
            done = self._progress.start(batch)
            for datagram, count in packets(batch[done:], self._max_bytes):
                self._udp.send(datagram)
                done += count
                self._progress.record(batch, done)

    def delivery_stats(self) -> Mapping[str, int]:
        """The delivery queue's counters, in lines: queued, sent, dropped (queue full), failed (sends)."""
        return self._queue.delivery_stats()

    def delivery_state(self) -> Mapping[str, object]:
        """The delivery queue now: depth, capacity, the last failed send's error and when (admin page)."""
        return self._queue.delivery_state()

    async def flush(self, timeout: float = 5.0) -> bool:
        """Send what is queued now (True), or give up after `timeout` seconds (False)."""
        return await self._queue.flush(timeout)

    async def close(self) -> None:
        """Send what is queued (for at most CLOSE_TIMEOUT_S), then close the socket. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._queue.close(CLOSE_TIMEOUT_S)
        await asyncio.to_thread(self._udp.close)


def _is_int64(value: Any) -> bool:
    """An INT64 attribute value: an int that is not a bool, a timestamp or a duration."""
    return isinstance(value, int) and not isinstance(value, bool | Duration | Timestamp)


def _describe(value: Any) -> str:
    if isinstance(value, Duration):
        return f"the duration {value}"
    if isinstance(value, Timestamp):
        return f"the timestamp {value.isoformat()}"
    if value is None:
        return "no value"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def build(env: Env) -> StatsdHandler:
    return StatsdHandler(env)
