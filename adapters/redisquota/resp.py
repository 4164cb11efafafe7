"""One Redis connection on the hot path: packed commands out, replies matched to callers in order.

redis-py opens the connection and does the handshake (TLS, AUTH, SELECT, a Sentinel's master), then
`Pipe.adopt` takes its transport over. From then on a call is one `transport.write` and a future that
`data_received` resolves, with no stream reader, parser object or lock in between (that saves about
20 of the 100 us redis-py's path cost a Check inside the server: docs/PERFORMANCE.md). Calls may
overlap on one connection (Redis answers in order), and a call whose deadline passes fails with
TimeoutError while its late reply is read and dropped, so the connection stays usable.

Replies are RESP2 (connections are made with `protocol=2`, so Redis never pushes): simple strings,
errors, integers and bulk strings, which is all the quota script, SCRIPT LOAD and PING answer. Anything
else ends the connection.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import (
    BusyLoadingError,
    NoScriptError,
    ReadOnlyError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

#: Error replies by their first word, as the exceptions redis-py raises for them (the handler tells a
#: refused call from a lost Redis by these).
_ERRORS: dict[bytes, type[ResponseError]] = {
    b"NOSCRIPT": NoScriptError,
    b"READONLY": ReadOnlyError,
    b"LOADING": BusyLoadingError,
}


class Pipe(asyncio.Protocol):
    """A Redis connection taken over from redis-py: `call(packed, deadline)` and replies in order."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._waiting: deque[tuple[asyncio.Future[Any], asyncio.TimerHandle]] = deque()
        self._buffer = b""
        self._lost: BaseException | None = None
        self._writer: asyncio.StreamWriter | None = None

    @classmethod
    def adopt(cls, connection: AbstractConnection) -> Pipe:
        """Take over a redis-py connection that has finished its handshake; `connection` is left
        disconnected, and the pipe owns the socket."""
        writer = getattr(connection, "_writer", None)
        reader = getattr(connection, "_reader", None)
        if writer is None or reader is None:
            raise RedisConnectionError("the redis-py connection is not connected")
        if str(connection.protocol) != "2":
            raise RedisConnectionError(f"the connection speaks RESP{connection.protocol}, not RESP2")
        if getattr(reader, "_buffer", b""):
            raise RedisConnectionError("unexpected bytes from Redis after the handshake")
        pipe = cls()
        # The stream objects close the transport when collected: the pipe keeps the writer, and
        # redis-py's connection forgets both, so neither closes what the pipe now owns.
        pipe._writer = writer
        connection._writer = connection._reader = None  # type: ignore[attr-defined]
        transport = writer.transport
        transport.set_protocol(pipe)
        pipe.connection_made(transport)
        if transport.is_closing():
            pipe.connection_lost(None)
        return pipe

    @property
    def in_flight(self) -> int:
        """Calls sent and not answered yet (including timed-out ones whose reply is still due)."""
        return len(self._waiting)

    @property
    def usable(self) -> bool:
        return self._lost is None

    def call(self, packed: bytes, deadline: float) -> asyncio.Future[Any]:
        """Send one packed command; the future gets its reply (an error reply as its exception), or
        TimeoutError at `deadline` (loop time), or a ConnectionError when the connection ends first."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self._lost is not None or self._transport is None:
            future.set_exception(RedisConnectionError(f"connection to Redis lost: {self._lost}"))
            return future
        self._transport.write(packed)
        self._waiting.append((future, loop.call_at(deadline, _expire, future)))
        return future

    def close(self) -> None:
        """Close the connection; calls still waiting fail with a ConnectionError."""
        if self._transport is not None:
            self._transport.close()
        self._fail(RedisConnectionError("connection closed"))

    # -- asyncio.Protocol ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisConnectionError(f"connection to Redis lost: {exc or 'closed by the server'}"))

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        waiting = self._waiting
        position, end = 0, len(buffer)
        try:
            while position < end:
                parsed = _reply(buffer, position, end)
                if parsed is None:
                    break
                value, position = parsed
                if not waiting:
                    raise ValueError("a reply nobody asked for")
                future, timer = waiting.popleft()
                if future.done():  # timed out (or cancelled): its reply is dropped
                    continue
                timer.cancel()
                if isinstance(value, ResponseError):
                    future.set_exception(value)
                else:
                    future.set_result(value)
        except ValueError as e:
            self._buffer = b""
            if self._transport is not None:
                self._transport.close()
            self._fail(RedisConnectionError(f"protocol error from Redis: {e}"))
            return
        self._buffer = buffer[position:] if position < end else b""

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost fails what waits

    def _fail(self, error: BaseException) -> None:
        if self._lost is None:
            self._lost = error
        waiting = self._waiting
        while waiting:
            future, timer = waiting.popleft()
            timer.cancel()
            if not future.done():
                future.set_exception(error)


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


def _reply(buffer: bytes, start: int, end: int) -> tuple[Any, int] | None:
    """The reply at `buffer[start:]` and where the next begins, or None when it is not all there yet."""
    line_end = buffer.find(b"\r\n", start)
    if line_end < 0:
        return None
    kind = buffer[start]
    if kind == 0x24:  # $ bulk string
        size = int(buffer[start + 1 : line_end])
        if size < 0:
            return None, line_end + 2
        data_end = line_end + 2 + size
        if data_end + 2 > end:
            return None
        return buffer[line_end + 2 : data_end], data_end + 2
    if kind == 0x3A:  # : integer
        return int(buffer[start + 1 : line_end]), line_end + 2
    if kind == 0x2B:  # + simple string
        return buffer[start + 1 : line_end], line_end + 2
    if kind == 0x2D:  # - error
        text = buffer[start + 1 : line_end].decode(errors="replace")
        error_class = _ERRORS.get(text.split(" ", 1)[0].encode(), ResponseError)
        return error_class(text), line_end + 2
    raise ValueError(f"unexpected reply type {chr(kind)!r}")
