"""The Envoy access-log streams open now, for the admin page: who sends each, since when, how much.

The access-log service adds a stream when Envoy opens it and removes it when it ends, on the gRPC event
loop; the admin page lists them from its own thread, so the registry takes a lock (held only to add,
remove or copy the list). What a proxy names itself is its own text: each name is cut at NAME_LIMIT
characters, and the page escapes it.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

#: Characters kept of a name the proxy sends (node id, cluster, log name).
NAME_LIMIT = 256


def _cut(text: str) -> str:
    return text if len(text) <= NAME_LIMIT else text[: NAME_LIMIT - 1] + "…"


@dataclass(slots=True)
class StreamInfo:
    """One open stream; the counters are bumped by the service as messages arrive."""

    peer: str  # the client's address, as gRPC gives it (ipv4:127.0.0.1:5000)
    since: int  # clock ns when it was opened
    node_id: str = ""  # from the stream's identifier (its first message)
    cluster: str = ""
    log_name: str = ""
    messages: int = 0
    http_entries: int = 0
    tcp_entries: int = 0
    number: int = field(default=0, compare=False)  # the registry's own id, in order of opening

    def identify(self, node_id: str, cluster: str, log_name: str) -> None:
        self.node_id, self.cluster, self.log_name = _cut(node_id), _cut(cluster), _cut(log_name)

    @property
    def entries(self) -> int:
        return self.http_entries + self.tcp_entries


class StreamRegistry:
    """The streams open now, by number."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[int, StreamInfo] = {}
        self._numbers = itertools.count(1)
        self.opened = 0  # streams opened since the server started

    def open(self, peer: str, since: int) -> StreamInfo:
        info = StreamInfo(_cut(peer), since, number=next(self._numbers))
        with self._lock:
            self._open[info.number] = info
            self.opened += 1
        return info

    def close(self, info: StreamInfo) -> None:
        with self._lock:
            self._open.pop(info.number, None)

    def streams(self) -> list[StreamInfo]:
        """The open streams, oldest first (the objects themselves: their counters keep moving)."""
        with self._lock:
            return list(self._open.values())

    def __len__(self) -> int:
        return len(self._open)
