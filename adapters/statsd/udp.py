"""statsd lines packed into UDP datagrams, and the socket that sends them (used from a worker thread).

The socket is *connected*, so the kernel reports a receiver that is not there (an ICMP "port
unreachable") as ECONNREFUSED; after every datagram the socket's pending error is read, so on a local
network a missing receiver is seen at once, and the batch is retried instead of lost. (A plain
`sendto`, as the statsd library's client does, never learns of it.) Any error closes the socket; the
next send resolves the address again, so a receiver that moved or came back is found.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator, Sequence


def packets(lines: Sequence[str], max_bytes: int) -> Iterator[tuple[bytes, int]]:
    """(datagram, number of lines in it): lines joined by newlines, each datagram at most `max_bytes`
    long unless a single line is longer (it then goes alone)."""
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        data = line.encode("utf-8")
        added = len(data) + (1 if chunk else 0)
        if chunk and size + added > max_bytes:
            yield b"\n".join(chunk), len(chunk)
            chunk, size, added = [], 0, len(data)
        chunk.append(data)
        size += added
    if chunk:
        yield b"\n".join(chunk), len(chunk)


class UdpSender:
    """One connected UDP socket to `host:port`, opened on first use and after every error."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()  # the socket is used by one thread at a time

    def send(self, datagram: bytes) -> None:
        """Send one datagram; OSError when it or an earlier one was refused, or the address is bad."""
        with self._lock:
            sock = self._sock or self._connect()
            try:
                sock.send(datagram)
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            except OSError:
                self._close()
                raise
            if error:
                self._close()
                raise OSError(error, f"{os.strerror(error)} (statsd at {self.host}:{self.port})")

    def _connect(self) -> socket.socket:
        infos = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_DGRAM)
        # IPv4 first: `localhost` also names ::1, where a statsd daemon (udp4 by default) is not.
        family, kind, proto, _, address = sorted(infos, key=lambda i: i[0] != socket.AF_INET)[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.connect(address)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        return sock

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
