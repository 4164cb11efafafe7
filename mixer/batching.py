"""Background delivery in batches, for telemetry adapters: Report never waits on a backend.

A telemetry handler's `handle_<template>` puts items into a `BatchQueue` and returns at once (DESIGN.md
decision 6). A background task takes up to `batch_size` items at a time and hands them to `send`, at
least every `flush_interval` seconds and sooner when a full batch is waiting. When `send` fails, the same
batch is retried with exponential back-off (`retry_initial` doubling up to `retry_max`) until it goes
through; meanwhile new items wait in the queue, and once `capacity` items are waiting, new ones are
dropped and counted. So a backend that is down costs memory up to `capacity` items and nothing else,
and delivery resumes by itself when the backend returns.

`send(batch)` may be a coroutine function, or a plain function; a plain one runs in a worker thread
(it may block on a socket). Counters (`stats`): queued, sent, dropped, failed (send attempts that raised);
`delivery_state()` says how full the queue is now and what the last failed send said. Drops are logged at
powers of ten, unless `log_drops` is False (the owner reports them in its own words).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:  # only a type here: mixerd.adapter re-exports this module, so importing it would cycle
    from .adapter import Env

T = TypeVar("T")

#: Consecutive failures that are logged (then every 1000th), so a long outage does not flood the log.
_LOGGED_FAILURES = frozenset({1, 10, 100})


@dataclass
class BatchStats:
    queued: int = 0  # items accepted into the queue
    sent: int = 0  # items delivered
    dropped: int = 0  # items refused because the queue was full (or left over at close)
    failed: int = 0  # send attempts that raised


def _closed(batch: list[Any]) -> None:
    raise RuntimeError("the queue is closed")


class BatchQueue(Generic[T]):
    """A bounded queue drained in batches by a background task started through `env`."""

    def __init__(
        self,
        env: Env,
        send: Callable[[list[T]], Awaitable[Any] | Any],
        *,
        capacity: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        retry_initial: float = 0.1,
        retry_max: float = 10.0,
        log_drops: bool = True,
        name: str = "",
    ) -> None:
        if capacity < 1 or batch_size < 1:
            raise ValueError("capacity and batch_size must be at least 1")
        self._env = env
        self._send = send
        self._async_send = inspect.iscoroutinefunction(send)
        self.capacity = capacity
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._log_drops = log_drops
        self.stats = BatchStats()
        self._items: deque[T] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._dropped_logged = 0
        self._last_error = ""
        self._last_error_at = 0  # env clock ns
        self._task: asyncio.Task[Any] | None = env.spawn(self._run, name=name or f"{env.handler} delivery")

    def __len__(self) -> int:
        return len(self._items)

    def delivery_stats(self) -> dict[str, int]:
        """The counters as a handler's `delivery_stats()` publishes them (queued, sent, dropped, failed)."""
        s = self.stats
        return {"queued": s.queued, "sent": s.sent, "dropped": s.dropped, "failed": s.failed}

    def delivery_state(self) -> dict[str, Any]:
        """The queue now, as a handler's `delivery_state()` publishes it (the admin page shows it): items
        waiting (`depth`) out of `capacity`, and the last failed send's error and when (clock ns; kept
        after sends succeed again, "" and 0 before any failure)."""
        return {
            "depth": len(self._items),
            "capacity": self.capacity,
            "last_error": self._last_error,
            "last_error_at": self._last_error_at,
        }

    # -- the request side: never waits ------------------------------------------------------------

    def put(self, item: T) -> bool:
        """Queue one item; False (and counted as dropped) when the queue is full or closing."""
        if self._closing or len(self._items) >= self.capacity:
            self._drop(1)
            return False
        self._items.append(item)
        self.stats.queued += 1
        if len(self._items) >= self.batch_size:
            self._wake.set()
        return True

    def put_many(self, items: Iterable[T]) -> int:
        """Queue items in order; the number accepted (each refused one is counted as dropped)."""
        return sum(self.put(item) for item in items)

    def _drop(self, n: int) -> None:
        self.stats.dropped += n
        # Log at powers of ten so a long outage does not flood the log.
        if self._log_drops and self.stats.dropped >= max(1, self._dropped_logged * 10):
            self._dropped_logged = self.stats.dropped
            self._env.logger.warning(
                "%s: delivery queue full (%d items); %d dropped so far",
                self._env.handler,
                self.capacity,
                self.stats.dropped,
            )

    # -- the background side ----------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self.retry_initial
        failures = 0  # consecutive failed attempts
        while True:
            if not self._items:
                self._idle.set()
                if self._closing:
                    return
                await self._wait_for_work()
                continue
            self._idle.clear()
            batch = [self._items[i] for i in range(min(self.batch_size, len(self._items)))]
            try:
                if self._async_send:
                    await self._send(batch)
                else:
                    await asyncio.to_thread(self._send, batch)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.stats.failed += 1
                failures += 1
                self._last_error = f"{type(e).__name__}: {e}"
                self._last_error_at = self._env.clock()
                if failures in _LOGGED_FAILURES or failures % 1000 == 0:  # an outage logs a handful of lines
                    self._env.logger.warning(
                        "%s: sending %d items failed (%d attempts so far; retry in %.1fs): %s",
                        self._env.handler,
                        len(batch),
                        failures,
                        delay,
                        e,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            if failures:
                self._env.logger.info(
                    "%s: delivery resumed after %d failed attempts", self._env.handler, failures
                )
                failures = 0
            delay = self.retry_initial
            for _ in batch:
                self._items.popleft()
            self.stats.sent += len(batch)
            if not self._items:
                self._idle.set()
            if len(self._items) < self.batch_size and not self._closing:
                # Wait for a full batch or the flush interval, whichever comes first.
                await self._wait_for_work()

    async def _wait_for_work(self) -> None:
        """Until a full batch is waiting, close() is called, or the flush interval has passed."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.flush_interval)

    async def flush(self, timeout: float = 5.0) -> bool:
        """Deliver what is queued now (True), or give up after `timeout` seconds (False)."""
        self._wake.set()
        try:
            while self._items:
                self._wake.set()
                self._idle.clear()
                await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self, timeout: float = 5.0) -> None:
        """Stop taking items, deliver what is queued within `timeout`, drop (and count) the rest.

        mixerd cancels a handler's background work before calling its close(), so when the delivery
        task is gone this delivers the last batches itself.
        """
        if self._closing:
            return
        self._closing = True
        self._wake.set()
        task = self._task
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        else:
            await self._drain(timeout)
        if self._items:
            self.stats.dropped += len(self._items)
            self._items.clear()
        # Leave no reference cycle behind (the task's frames and the handler's send method both lead back
        # here): mixerd freezes its heap, and a frozen cycle is never collected (mixer/runtime/heap.py).
        self._task = None
        self._send = _closed

    async def _drain(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._items and (left := deadline - loop.time()) > 0:
            batch = [self._items[i] for i in range(min(self.batch_size, len(self._items)))]
            try:
                if self._async_send:
                    await asyncio.wait_for(self._send(batch), left)
                else:
                    await asyncio.wait_for(asyncio.to_thread(self._send, batch), left)
            except Exception as e:
                self.stats.failed += 1
                self._env.logger.warning(
                    "%s: final delivery of %d items failed: %s", self._env.handler, len(batch), e
                )
                return
            for _ in batch:
                self._items.popleft()
            self.stats.sent += len(batch)


class SendProgress:
    """How many items of the batch at the head of a BatchQueue a `send` has already delivered.

    The queue hands a failed batch back unchanged (the same first item) and pops a batch only after a
    send succeeds; and at close it delivers the last batches itself while a cancelled send may still be
    finishing in its worker thread. A send that records its progress here skips, on the next attempt,
    what already went out. Items must be fresh objects (packed bytes, formatted lines, spans), so `is`
    tells the head apart from any later one. Use it under the send's own lock.
    """

    def __init__(self) -> None:
        self._head: object = None
        self._done = 0

    def start(self, batch: list[Any]) -> int:
        """How many leading items of `batch` are already delivered."""
        return min(self._done, len(batch)) if batch and batch[0] is self._head else 0

    def record(self, batch: list[Any], done: int) -> None:
        """The first `done` items of `batch` are delivered."""
        self._head, self._done = batch[0], done
