"""envoyproxy/ratelimit's stats sent to statsd, named as it names them, for users of its statsd sink.

Every `ratelimit_stats_flush_interval` (upstream's STATS_FLUSH_INTERVAL, 10 s) the counters that grew
since the last send (ratelimit_stats.py) go out as statsd counter lines, as gostats flushes them:

    ratelimit.service.rate_limit.<domain>.<descriptor>.<total_hits|over_limit|near_limit|within_limit|shadow_mode>
    ratelimit.service.rate_limit.<domain>.domain_not_found     (per descriptor, as upstream counts it)
    ratelimit.service.global_shadow_mode
    ratelimit.service.config_load_success, ratelimit.service.config_load_error
    ratelimit.service.call.should_rate_limit.redis_error       (requests a backend failed: UNAVAILABLE,
                                                                or a limit answered by the fail policy)
    ratelimit.service.call.should_rate_limit.service_error     (malformed requests, internal errors)
    ratelimit_server.ShouldRateLimit.total_requests

`<domain>.<descriptor>` is sanitized as upstream's SanitizeStatName does (`:` and `|` become `_`, so do
the dots of an IPv4 address), and so are line breaks and other control characters, which would
otherwise let a caller's descriptor value add lines of its own.

Nothing of this is on the request path: the counters are read on the event loop at each interval, and
the lines are formatted (with the `statsd` library's client) and sent from a worker thread over a
connected non-blocking UDP socket. A datagram that cannot be sent is dropped and counted (`dropped`),
never retried: statsd is lossy by design, and counts resume at the next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable

from statsd.client.base import StatsClientBase

from .ratelimit_stats import RateLimitStats

_log = logging.getLogger(__name__)
_DATAGRAM_BYTES = 1400  # under a typical MTU with room for the headers
_IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_UNSAFE = re.compile(r"[:|\x00-\x1f\x7f]")
_PREFIX = "ratelimit.service"


def sanitize(name: str) -> str:
    """A stat name as upstream's SanitizeStatName leaves it, and with no control characters."""
    name = _UNSAFE.sub("_", name)
    return _IPV4.sub(lambda m: m.group(0).replace(".", "_"), name)


class _Lines(StatsClientBase):
    """The statsd library's client, whose "send" collects the finished lines."""

    def __init__(self) -> None:
        self._prefix = None
        self.lines: list[str] = []

    def _send(self, data: str) -> None:  # type: ignore[override]
        self.lines.append(data)


class StatsdSink:
    """Sends what `stats` (and `config_loads()`: config loads and rejections so far) add up to."""

    def __init__(self, stats: RateLimitStats, address: str, interval: float) -> None:
        self._stats = stats
        host, _, port = address.rpartition(":")
        self._host = host.strip("[]") or "localhost"
        self._port = int(port)
        self._interval = interval
        self.config_loads: Callable[[], tuple[int, int]] = lambda: (0, 0)
        self._sent: Counter[str] = Counter()  # every counter's value at the last send
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()  # one send at a time (a cancelled one may still be running)
        self.dropped = 0  # datagrams that could not be sent
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="ratelimit statsd")

    async def close(self) -> None:
        """Stop, after one last send of what is left."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self._send, self.take())
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await asyncio.to_thread(self._send, self.take())
            except Exception:  # the stats must never take the service down
                _log.exception("sending rate limit stats to statsd at %s:%d failed", self._host, self._port)

    def take(self) -> list[tuple[str, int]]:
        """(stat name, increment) of every counter that grew since the last call (on the event loop)."""
        now: Counter[str] = Counter()
        for name, n in self._totals():
            now[name] += n  # (two keys may sanitize to one name: as upstream, they add up)
        out = [(name, n - self._sent[name]) for name, n in now.items() if n > self._sent[name]]
        self._sent = now
        return out

    def _totals(self) -> Iterable[tuple[str, int]]:
        s = self._stats
        for (domain, descriptor, family), n in s.hits.items():
            yield f"{_PREFIX}.rate_limit.{sanitize(f'{domain}.{descriptor}')}.{family}", n
        for domain, n in s.not_found_descriptors.items():
            yield f"{_PREFIX}.rate_limit.{sanitize(domain)}.domain_not_found", n
        yield f"{_PREFIX}.global_shadow_mode", sum(s.global_shadow.values())
        loads, rejections = self.config_loads()
        yield f"{_PREFIX}.config_load_success", loads
        yield f"{_PREFIX}.config_load_error", rejections
        redis = service = 0
        for (_, code), n in s.requests.items():
            if code == "UNAVAILABLE":
                redis += n
            elif code in ("INVALID_ARGUMENT", "INTERNAL"):
                service += n
        yield f"{_PREFIX}.call.should_rate_limit.redis_error", redis + sum(s.backend_error_requests.values())
        yield f"{_PREFIX}.call.should_rate_limit.service_error", service
        yield "ratelimit_server.ShouldRateLimit.total_requests", sum(s.requests.values())

    def _send(self, increments: list[tuple[str, int]]) -> None:
        """Format and send `increments` (in a worker thread)."""
        if not increments:
            return
        client = _Lines()
        for name, n in increments:
            client.incr(name, n)
        with self._lock:
            self._send_lines(client.lines)

    def _send_lines(self, lines: list[str]) -> None:
        for datagram in _datagrams(lines):
            try:
                self._socket().send(datagram)
            except OSError as e:  # no receiver (ECONNREFUSED), a full buffer, an address that fails
                self.dropped += 1
                if self.dropped in (1, 10, 100, 1000) or self.dropped % 10_000 == 0:
                    where = f"{self._host}:{self._port}"
                    _log.warning("statsd at %s: %s (%d datagrams dropped)", where, e, self.dropped)
                if self._sock is not None:
                    self._sock.close()
                    self._sock = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            family, kind, proto, _, address = sorted(
                socket.getaddrinfo(self._host, self._port, 0, socket.SOCK_DGRAM),
                key=lambda info: info[0] != socket.AF_INET,  # IPv4 first, as statsd daemons listen
            )[0]
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                sock.connect(address)
            except OSError:
                sock.close()
                raise
            self._sock = sock
        return self._sock


def _datagrams(lines: list[str]) -> Iterable[bytes]:
    """Lines joined by newlines into datagrams of at most _DATAGRAM_BYTES (a longer line goes alone)."""
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        data = line.encode("utf-8")
        if chunk and size + 1 + len(data) > _DATAGRAM_BYTES:
            yield b"\n".join(chunk)
            chunk, size = [], 0
        size += len(data) + (1 if chunk else 0)
        chunk.append(data)
    if chunk:
        yield b"\n".join(chunk)
