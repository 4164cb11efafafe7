"""The otlp handler: tracespan instances become SDK spans, exported in batches in the background.

Report never waits on the receiver (DESIGN.md decision 6): `handle_tracespan` turns each instance into
a span (spans.py) and puts it in a BatchQueue. The queue's background task takes up to `batchSize`
spans when that many wait, or every `flushInterval`, and exports them as one request from a worker
thread, through opentelemetry-exporter-otlp's OTLPSpanExporter (exporter.py). A failed export, whatever
the reason, is retried with back-off (the exporter tells only success or failure); once
`queueCapacity` spans wait, new ones are dropped and counted.

Instances that give no span are counted, not queued: `untraced` (no trace or span id), `sampled_out`,
and `invalid` (malformed ids or values, logged).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from mixerd.adapter import BatchQueue, Env, SendProgress, TraceSpanInstance

from .exporter import Exporter
from .params import Params, zipkin_to_otlp
from .spans import InvalidSpan, Item, Outcome, SpanMapper

#: Back-off between retries of a failed export (and of grpc's reconnects): doubling up to the second.
RETRY_INITIAL_S = 0.1
RETRY_MAX_S = 5.0
#: How long close() tries to export what is still queued.
CLOSE_TIMEOUT_S = 2.0


class _Tally:
    """A count that logs a warning at 1, 10, 100, ... so a steady problem does not flood the log."""

    def __init__(self, env: Env, what: str) -> None:
        self._env = env
        self._what = what
        self.count = 0
        self._logged = 0

    def add(self, n: int, reason: str) -> None:
        self.count += n
        if n and self.count >= max(1, self._logged * 10):
            self._logged = self.count
            self._env.logger.warning(
                "%s: %s (%d %s so far)", self._env.handler, reason, self.count, self._what
            )


class OtlpHandler:
    """`params` replaces env.params (the zipkin adapter's mapped params); `exporter` the OTLP
    exporter (tests)."""

    def __init__(self, env: Env, params: Params | None = None, exporter: Exporter | None = None) -> None:
        params = params if params is not None else env.params
        self._env = env
        self._mapper = SpanMapper(env.instances, params.sampling_probability)
        # Made first: it reads the TLS files, and a failure must leave no background work behind.
        self._exporter = exporter or Exporter(params, (RETRY_INITIAL_S, RETRY_MAX_S))
        self.endpoint = params.endpoint
        self.untraced = 0
        self.sampled_out = 0
        self._invalid = _Tally(env, "invalid")
        self._send_lock = threading.Lock()  # one export at a time, even when a cut-short one still runs
        self._progress = SendProgress()
        self._closed = False
        self._queue: BatchQueue[Item] = BatchQueue(
            env,
            self._send,
            capacity=params.queue_capacity,
            batch_size=params.batch_size,
            flush_interval=params.flush_interval / 1e9,
            retry_initial=RETRY_INITIAL_S,
            retry_max=RETRY_MAX_S,
            name=f"{env.handler} otlp delivery",
        )

    # -- the request path: convert and queue, never wait -------------------------------------------

    def handle_tracespan(self, instances: list[TraceSpanInstance]) -> None:
        for instance in instances:
            try:
                result = self._mapper.convert(instance)
            except InvalidSpan as e:
                self._invalid.add(1, f"{instance.name}: not exported: {e}")
                continue
            if result is Outcome.UNTRACED:
                self.untraced += 1
            elif result is Outcome.SAMPLED_OUT:
                self.sampled_out += 1
            else:
                self._queue.put(result)

    # -- the background side -----------------------------------------------------------------------

    def _send(self, batch: list[Item]) -> None:
        """Export `batch` as one request (in a worker thread); raises when it should be retried."""
        with self._send_lock:
            # A send cut short at close may have gone through after all: skip what was exported.
            pending = batch[self._progress.start(batch) :]
            if not pending:
                return
            self._exporter.export(pending)
            self._progress.record(batch, len(batch))

    def delivery_stats(self) -> Mapping[str, int]:
        """The delivery queue's counters, in spans: queued, sent, dropped (queue full), failed (exports)."""
        return self._queue.delivery_stats()

    def delivery_state(self) -> Mapping[str, object]:
        """The delivery queue now: depth, capacity, the last failed send's error and when (admin page)."""
        return self._queue.delivery_state()

    def span_counts(self) -> Mapping[str, int]:
        """Instances that gave no span: untraced, sampled_out, invalid. (No `rejected`: the exporter
        does not pass on a receiver's refusal or partial success, see exporter.py.)"""
        return {"untraced": self.untraced, "sampled_out": self.sampled_out, "invalid": self._invalid.count}

    async def flush(self, timeout: float = 5.0) -> bool:
        """Export what is queued now (True), or give up after `timeout` seconds (False)."""
        return await self._queue.flush(timeout)

    async def close(self) -> None:
        """Export what is queued (for at most CLOSE_TIMEOUT_S), then shut the exporter down. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._queue.close(CLOSE_TIMEOUT_S)
        self._exporter.close()


def build(env: Env) -> OtlpHandler:
    return OtlpHandler(env)


def build_zipkin(env: Env) -> OtlpHandler:
    """A zipkin handler: Mixer's zipkin params, mapped onto the OTLP exporter (params.zipkin_to_otlp)."""
    params = zipkin_to_otlp(env.params)
    env.logger.info(
        "%s: exporting spans over OTLP/gRPC to %s (from url %s; its path is not used)",
        env.handler,
        params.endpoint,
        env.params.url,
    )
    return OtlpHandler(env, params)
