"""Open-loop HTTP/1.1 load and a minimal upstream, for benchmarks through a real Envoy.

`open_loop(...)` starts request i at `start + i / rate`, whatever happened to earlier requests (a
closed loop would wait for slow answers and hide them). Requests go over keep-alive connections; when
all are busy a new one is opened rather than queueing in the client, so the only queue is in the system
under test. Latency is measured from writing the request to reading the whole answer.

`serve_upstream()` runs (in a process of its own, see `upstream_process`) an asyncio HTTP/1.1 server
answering every request 200 with a short body: far cheaper per request than http.server, so the
upstream adds little to what is measured.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing as mp
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

_BODY = b"ok\n"
_ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s" % (len(_BODY), _BODY)


# -- the upstream ------------------------------------------------------------------------------------


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = _content_length(head)
            if length:
                await reader.readexactly(length)
            writer.write(_ANSWER)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def _serve(port_out: mp.SimpleQueue) -> None:  # type: ignore[type-arg]
    async def main() -> None:
        server = await asyncio.start_server(_answer, "127.0.0.1", 0)
        port_out.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


@contextmanager
def upstream_process() -> Iterator[str]:
    """The upstream in a child process; yields its "127.0.0.1:port"."""
    ctx = mp.get_context("spawn")
    port_out = ctx.SimpleQueue()
    process = ctx.Process(target=_serve, args=(port_out,), daemon=True)
    process.start()
    try:
        yield f"127.0.0.1:{port_out.get()}"
    finally:
        process.terminate()
        process.join(10)


# -- the client --------------------------------------------------------------------------------------


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
        if name.strip().lower() == b"transfer-encoding":
            raise ValueError("chunked answers are not supported by this client")
    return 0


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)  # seconds, of the answers that came
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    extra_connections: int = 0  # opened because every connection was busy
    max_start_lag: float = 0.0  # how late the client started a request (its own overload)

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile in seconds (q in 0..100)."""
        ordered = sorted(self.latencies)
        rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
        return ordered[rank]


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = _content_length(head)
        if length:
            await self.reader.readexactly(length)
        return int(head[9:12])

    def close(self) -> None:
        self.writer.close()


async def open_loop(
    host: str,
    port: int,
    request_for: Callable[[int], bytes],
    *,
    rate: float,
    seconds: float,
    connections: int = 8,
) -> LoadResult:
    """`rate` requests per second for `seconds`; request i's bytes are `request_for(i)`."""
    result = LoadResult()
    idle = [_Connection(*await asyncio.open_connection(host, port)) for _ in range(connections)]

    async def one(i: int) -> None:
        if idle:
            connection = idle.pop()
        else:
            connection = _Connection(*await asyncio.open_connection(host, port))
            result.extra_connections += 1
        try:
            request = request_for(i)
            began = time.perf_counter()
            status = await connection.exchange(request)
            result.latencies.append(time.perf_counter() - began)
            result.statuses[status] += 1
            idle.append(connection)
        except (OSError, asyncio.IncompleteReadError, ValueError) as e:
            result.errors[type(e).__name__] += 1
            connection.close()

    total = int(rate * seconds)
    start = time.perf_counter() + 0.05
    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            result.max_start_lag = max(result.max_start_lag, -delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    for connection in idle:
        connection.close()
    return result


def get_request(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "host: bench", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
