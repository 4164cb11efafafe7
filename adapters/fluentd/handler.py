"""The fluentd handler: logentry instances become Fluentd events, pushed in the background.

Report never waits on Fluentd (DESIGN.md decision 6): `handle_logentry` turns each instance into a
packed event and puts it in a BatchQueue of `instanceBufferSize` entries (a full queue drops and counts).
The queue's background task pushes at least every `pushIntervalDuration`, and as soon as half the
buffer is waiting, from a worker thread, in writes of at most `maxBatchSizeBytes`. A failed push is
retried with back-off, reconnecting each time, so delivery resumes by itself when Fluentd is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping

from mixerd.adapter import BatchQueue, Env, InstanceInfo, LogEntryInstance, SendProgress, ValueType

from . import record
from .params import Params, split_address
from .sender import Sender

#: Back-off between retries of a failed push: doubling from the first to the second.
RETRY_INITIAL_S = 0.1
RETRY_MAX_S = 2.0
#: How long close() tries to deliver what is still queued, and then to close the connection.
CLOSE_TIMEOUT_S = 2.0

_NO_KEYS: frozenset[str] = frozenset()


class FluentdHandler:
    """`sender` replaces the connection to Fluentd (tests)."""

    def __init__(self, env: Env, sender: Sender | None = None) -> None:
        params: Params = env.params
        self._env = env
        self._integer_duration = params.integer_duration
        self._max_bytes = params.max_batch_size_bytes
        self._ip_keys = _ip_variables(env.instances)
        host, port = split_address(params.address)
        self._sender = sender or Sender(host, port, params.push_timeout_duration / 1e9)
        self._send_lock = threading.Lock()  # one push at a time, even when a cancelled one still runs
        self._progress = SendProgress()
        self.skipped = 0  # entries that could not be encoded
        self._closed = False
        self._queue: BatchQueue[bytes] = BatchQueue(
            env,
            self._push,
            capacity=params.instance_buffer_size,
            batch_size=max(1, params.instance_buffer_size // 2),
            flush_interval=params.push_interval_duration / 1e9,
            retry_initial=RETRY_INITIAL_S,
            retry_max=RETRY_MAX_S,
            name=f"{env.handler} fluentd delivery",
        )

    # -- the request path: encode and queue, never wait ---------------------------------------------

    def handle_logentry(self, instances: list[LogEntryInstance]) -> None:
        for instance in instances:
            ip_keys = self._ip_keys.get(instance.name, _NO_KEYS)
            tag, data = record.event(instance, ip_keys, self._integer_duration)
            try:
                packed = self._sender.pack(tag, instance.timestamp, data)
            except (ValueError, TypeError) as e:  # e.g. a string with a lone surrogate
                self.skipped += 1
                self._env.logger.warning(
                    "%s: %s cannot be sent to Fluentd: %s (%d skipped so far)",
                    self._env.handler,
                    instance.name,
                    e,
                    self.skipped,
                )
                continue
            self._queue.put(packed)

    # -- the background side ---------------------------------------------------------------------------

    def _push(self, batch: list[bytes]) -> None:
        """Write `batch` in writes of at most maxBatchSizeBytes (in a worker thread); raises on failure."""
        with self._send_lock:
            done = self._progress.start(batch)
            chunk: list[bytes] = []
            size = 0
            for packed in batch[done:]:
                if chunk and size + len(packed) > self._max_bytes:
                    self._sender.write(b"".join(chunk))
                    done += len(chunk)
                    self._progress.record(batch, done)
                    chunk, size = [], 0
                chunk.append(packed)
                size += len(packed)
            if chunk:
                self._sender.write(b"".join(chunk))
                self._progress.record(batch, done + len(chunk))

    def delivery_stats(self) -> Mapping[str, int]:
        """The delivery queue's counters, in entries: queued, sent, dropped (buffer full), failed (pushes)."""
        return self._queue.delivery_stats()

    def delivery_state(self) -> Mapping[str, object]:
        """The delivery queue now: depth, capacity, the last failed send's error and when (admin page)."""
        return self._queue.delivery_state()

    async def flush(self, timeout: float = 5.0) -> bool:
        """Push what is queued now (True), or give up after `timeout` seconds (False)."""
        return await self._queue.flush(timeout)

    async def close(self) -> None:
        """Push what is queued (for at most CLOSE_TIMEOUT_S), then close the connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._queue.close(CLOSE_TIMEOUT_S)
        # A push cut short by the queue's timeout may still hold the connection: wait for it a while
        # (the worker thread closes the connection when it gets it, even after this stops waiting).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.to_thread(self._close_sender), CLOSE_TIMEOUT_S)

    def _close_sender(self) -> None:
        with self._send_lock:
            self._sender.close()


def _ip_variables(instances: Mapping[str, InstanceInfo]) -> dict[str, frozenset[str]]:
    """Per logentry instance, the variables whose inferred type is IP_ADDRESS."""
    keys: dict[str, frozenset[str]] = {}
    for name, info in instances.items():
        variables = info.types.get("variables")
        if info.template == "logentry" and isinstance(variables, Mapping):
            keys[name] = frozenset(k for k, t in variables.items() if t == ValueType.IP_ADDRESS)
    return keys


def build(env: Env) -> FluentdHandler:
    return FluentdHandler(env)
