"""Decision records written off the request path: a bounded queue, one background thread, a sink.

The request path only appends a record to a deque (no lock: an append is atomic, and only the event
loop's thread appends); past `max_queue` records waiting, the record is dropped and counted. The
writer thread wakes every `interval` seconds (0.2 by default, so a record is on disk within a second),
turns what waits into JSON lines and hands them to the sink in chunks. `close()` writes what is left,
then closes the sink.

Sinks are the standard library's logging handlers, used for their files: a RotatingFileHandler (rotation
by size, a few backups) for a file, a StreamHandler for stdout.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import logging.handlers
import sys
import threading
from collections.abc import Callable
from typing import Protocol

from .record import Decision

#: Records waiting to be written at most; beyond it they are dropped (docs/decision-logs.md).
MAX_QUEUE = 10000
#: The last lines written, kept for the admin page's Decisions view: at most this many, and this many
#: characters together (a line longer than a tenth of that is not kept: a request can be large).
RECENT_LINES = 100
RECENT_CHARS = 1_000_000
_CHUNK_CHARS = 64 * 1024  # one handler call per chunk: the rotating handler checks the size per call

_log = logging.getLogger(__name__)


class Sink(Protocol):
    def write(self, lines: list[str]) -> None: ...

    def close(self) -> None: ...


class HandlerSink:
    """Lines through a logging handler, in chunks of whole lines no larger than `chunk` characters."""

    def __init__(self, handler: logging.StreamHandler, chunk: int = _CHUNK_CHARS) -> None:  # type: ignore[type-arg]
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._handler = handler
        self._chunk = chunk

    def write(self, lines: list[str]) -> None:
        start, size = 0, 0
        for i, line in enumerate(lines):
            if size and size + len(line) + 1 > self._chunk:
                self._emit(lines[start:i])
                start, size = i, 0
            size += len(line) + 1
        if start < len(lines):
            self._emit(lines[start:])

    def _emit(self, lines: list[str]) -> None:
        record = logging.makeLogRecord({"msg": "\n".join(lines), "levelno": logging.INFO})
        self._handler.handle(record)

    def close(self) -> None:
        self._handler.close()


def file_sink(path: str, max_bytes: int, backups: int) -> HandlerSink:
    """A file rotated past `max_bytes` (FILE.1 .. FILE.`backups`); OSError when it cannot be opened."""
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True
    )
    # Chunks well under the limit, so a rotated file stays within it.
    return HandlerSink(handler, chunk=max(1, min(_CHUNK_CHARS, max_bytes // 8)))


class _Stdout(logging.StreamHandler):  # type: ignore[type-arg]
    def close(self) -> None:
        self.flush()  # never close the process's stdout
        super().close()


def stdout_sink() -> HandlerSink:
    return HandlerSink(_Stdout(sys.stdout))


class RecentLines:
    """The last lines written, newest last, within a count and a character budget. Appended by the
    writer thread, read (`lines()`) by the admin page's threads."""

    def __init__(self, most: int = RECENT_LINES, chars: int = RECENT_CHARS) -> None:
        self._lines: collections.deque[str] = collections.deque()
        self._most = most
        self._budget = chars
        self._chars = 0
        self._lock = threading.Lock()
        self.too_large = 0  # lines written but not kept here

    def add(self, line: str) -> None:
        if len(line) > self._budget // 10:
            self.too_large += 1
            return
        with self._lock:
            self._lines.append(line)
            self._chars += len(line)
            while len(self._lines) > self._most or self._chars > self._budget:
                self._chars -= len(self._lines.popleft())

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)


class DecisionWriter:
    """A bounded queue of decisions and the thread that writes them (see the module docstring)."""

    def __init__(
        self,
        sink: Sink,
        format_line: Callable[[Decision], str],
        max_queue: int = MAX_QUEUE,
        interval: float = 0.2,
    ) -> None:
        self._sink = sink
        self._format = format_line
        self._max = max_queue
        self._interval = interval
        self._queue: collections.deque[Decision] = collections.deque()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mixerd-decision-log", daemon=True)
        self._closed = False
        self.written = 0  # by the writer thread only
        self.dropped = 0  # by the request path only
        self.recent = RecentLines()  # what the admin page shows

    def start(self) -> None:
        self._thread.start()

    def offer(self, decision: Decision) -> None:
        """Queue `decision`, or drop and count it when the queue is full (never waits)."""
        if len(self._queue) >= self._max:
            self.dropped += 1
        else:
            self._queue.append(decision)

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def close(self, timeout: float = 5.0) -> None:
        """Write what waits, then close the sink (idempotent). Blocks: call it off the event loop."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        else:
            self._drain()
        if not self._thread.is_alive():
            self._sink.close()

    async def aclose(self) -> None:
        """`close()` from the event loop, in a thread of its own."""
        await asyncio.to_thread(self.close)

    def _run(self) -> None:
        while not self._closing.wait(self._interval):
            self._drain()
        self._drain()

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            lines: list[str] = []
            while queue and len(lines) < 1000:
                decision = queue.popleft()
                try:
                    lines.append(self._format(decision))
                except Exception:  # one bad record must not stop the log
                    _log.exception("decision log: cannot format a %s decision", decision.api)
            try:
                self._sink.write(lines)
            except Exception:
                _log.exception("decision log: cannot write %d decisions", len(lines))
                continue
            self.written += len(lines)
            for line in lines:
                self.recent.add(line)
