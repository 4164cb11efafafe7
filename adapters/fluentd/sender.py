"""The Fluentd connection: fluent-logger's FluentSender, writing many events at a time.

FluentSender speaks the forward protocol's message mode (`[tag, time, record]` in msgpack), connects on
first use and again after any error, and notices a Fluentd that went away (it reads the socket before
and after each write). Two things are added here:

- `pack` makes one event's bytes (done on the request path, so a record that cannot be encoded is
  found there, once, and never blocks the queue), with the time as a nanosecond EventTime;
- `write` sends many packed events in one write, and raises when it fails instead of keeping the
  bytes for later (FluentSender's own buffer): the delivery queue decides what is retried.

Used from one worker thread at a time; `write` may block up to the timeout.
"""

from __future__ import annotations

from typing import Any

from fluent.sender import EventTime, FluentSender

_MAX_SECONDS = (1 << 32) - 1  # EventTime holds the seconds as an unsigned 32-bit number


class Sender(FluentSender):
    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        super().__init__("", host=host, port=port, timeout=timeout_s)

    def pack(self, tag: str, time_ns: int, record: dict[str, Any]) -> bytes:
        """One event in message mode; ValueError (or TypeError) when the record cannot be encoded."""
        seconds, nanos = divmod(max(0, int(time_ns)), 1_000_000_000)
        if seconds > _MAX_SECONDS:
            seconds, nanos = _MAX_SECONDS, 0
        return self._make_packet(tag, EventTime(seconds, nanos), record)

    def write(self, data: bytes) -> None:
        """Send packed events; raise ConnectionError when they did not all go out."""
        if self._send(data):
            return
        error = self.last_error
        self.clear_last_error()
        self.pendings = None  # the queue keeps and retries the events, not FluentSender
        where = f"Fluentd at {self.host}:{self.port}"
        if error is None:
            raise ConnectionError(f"{where}: the sender is closed")
        raise ConnectionError(f"{where}: {error}") from error
