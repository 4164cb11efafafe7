"""redisquota's Redis, through async redis-py: one server, a Cluster, or a master found by Sentinels.

`run(now_us, operations)` sends one Check's operations: one EVALSHA for a single server (or a Sentinel
master), one per hash slot for a Cluster (sent together). A server that has lost the script (a restart,
SCRIPT FLUSH, a failover) answers NOSCRIPT; the same call is then made with EVAL, which runs the script
and loads it again, so the next EVALSHA finds it.

A single server (or Sentinel master) is the hot path, so it skips redis-py's generic command machinery:
redis-py opens each connection (TLS, AUTH, SELECT, asking Sentinels for the master), then a `Pipe`
(resp.py) takes it over; the command is packed here and written as it is. Calls go to an idle
connection, opening up to `connectionPoolSize`; beyond that they are pipelined on the least busy one.
Every call has a deadline; one that passes it fails with TimeoutError, and its late reply is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import (
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from . import script
from .address import Address, parse_address, parse_sentinel
from .params import Params
from .resp import Pipe

#: One quota operation: its bucket's hash tag, its three KEYS and its nine ARGV (see script.py).
Operation = tuple[str, tuple[str, str, str], tuple[Any, ...]]
#: The script's answer to one operation: (dedup hit 0/1, granted, window end or bucket, left).
Reply = tuple[int, int, int, int]

_SHA = script.SHA.encode()
_SOURCE = script.SOURCE.encode()
_LOAD = b"*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD\r\n$%d\r\n%s\r\n" % (len(_SOURCE), _SOURCE)
#: Packed arguments that repeat (keys of known buckets, the small strings): bounded, see _arg.
_PACKED: dict[str, bytes] = {}
_PACKED_LIMIT = 50_000


class Backend:
    """A single Redis server, or the master Sentinels name (the same thing once found)."""

    def __init__(self, pool: ConnectionPool, sentinel: Sentinel | None = None) -> None:
        self._pool = pool
        self._sentinel = sentinel
        self._pipes: list[Pipe] = []
        self._opening = 0
        self._size = max(1, pool.max_connections)

    async def connect(self, deadline: float) -> None:
        """Reach the server and load the script (so the first Check finds it)."""
        await self._call(_LOAD, deadline)

    async def run(self, now_us: int, operations: Sequence[Operation], deadline: float) -> list[Reply]:
        """The replies to `operations`, in order: one script call for them all, answered by `deadline`
        (loop time) or TimeoutError."""
        try:
            answer = await self._call(_pack(b"EVALSHA", _SHA, now_us, operations), deadline)
        except NoScriptError:
            answer = await self._call(_pack(b"EVAL", _SOURCE, now_us, operations), deadline)
        return _replies(answer, len(operations))

    async def _call(self, packed: bytes, deadline: float) -> Any:
        """Send one packed command and read its reply. A connection that failed after the command was
        written is not retried: Redis may have run it."""
        pipe = self._idle_pipe()
        if pipe is None:
            pipe = await self._open(deadline)
        return await pipe.call(packed, deadline)

    def _idle_pipe(self) -> Pipe | None:
        """A connection to send on: an idle one, else (when no more may be opened) the least busy one; or
        None to open a new one."""
        best: Pipe | None = None
        busy = 0  # usable connections, all busy; lost ones leave the list when the next one opens
        for pipe in self._pipes:
            if not pipe.usable:
                continue
            if not pipe.in_flight:
                return pipe
            busy += 1
            if best is None or pipe.in_flight < best.in_flight:
                best = pipe
        if best is None or busy + self._opening < self._size:
            return None
        return best

    async def _open(self, deadline: float) -> Pipe:
        self._pipes = [pipe for pipe in self._pipes if pipe.usable]
        connection = self._pool.make_connection()
        self._opening += 1
        try:
            # connect() does TLS, AUTH and SELECT, and for a Sentinel master asks where it is.
            async with asyncio.timeout_at(deadline):
                await connection.connect()
            pipe = Pipe.adopt(connection)
        except BaseException:
            await connection.disconnect(nowait=True)
            raise
        finally:
            self._opening -= 1
        self._pipes.append(pipe)
        return pipe

    async def reset(self) -> None:
        """Close every connection (after a failure, so the next attempt starts afresh)."""
        pipes, self._pipes = self._pipes, []
        for pipe in pipes:
            pipe.close()

    async def close(self) -> None:
        await self.reset()
        await self._pool.disconnect()
        if self._sentinel is not None:
            for client in self._sentinel.sentinels:
                await client.aclose()


class ClusterBackend:
    """A Redis Cluster: one script call per hash slot, sent together, through redis-py's cluster client."""

    def __init__(self, client: RedisCluster, size: int) -> None:
        self._client = client
        self._slots = asyncio.Semaphore(size)  # calls in flight, at most the client's connections

    async def connect(self, deadline: float) -> None:
        async with asyncio.timeout_at(deadline):
            await self._client.initialize()
            await self._client.ping()

    async def run(self, now_us: int, operations: Sequence[Operation], deadline: float) -> list[Reply]:
        """The replies to `operations`, in order: one script call per hash slot, all sent at once,
        answered by `deadline` (loop time) or TimeoutError."""
        async with asyncio.timeout_at(deadline), self._slots:
            return await self._run(now_us, operations)

    async def _run(self, now_us: int, operations: Sequence[Operation]) -> list[Reply]:
        by_slot: dict[int, list[int]] = {}
        for i, (tag, _keys, _argv) in enumerate(operations):
            by_slot.setdefault(key_slot(tag.encode()), []).append(i)
        groups = list(by_slot.values())
        answers = await asyncio.gather(
            *(self._eval(now_us, [operations[i] for i in group]) for group in groups)
        )
        out: list[Reply] = [(0, 0, 0, 0)] * len(operations)
        for group, replies in zip(groups, answers, strict=True):
            for i, reply in zip(group, replies, strict=True):
                out[i] = reply
        return out

    async def _eval(self, now_us: int, operations: Sequence[Operation]) -> list[Reply]:
        keys = [key for _tag, op_keys, _argv in operations for key in op_keys]
        argv = [now_us, *(arg for _tag, _keys, op_argv in operations for arg in op_argv)]
        try:
            answer = await self._client.execute_command("EVALSHA", script.SHA, len(keys), *keys, *argv)
        except NoScriptError:
            answer = await self._client.execute_command("EVAL", script.SOURCE, len(keys), *keys, *argv)
        return _replies(answer, len(operations))

    async def reset(self) -> None:
        """Nothing to do: the Cluster client finds its nodes again by itself."""

    async def close(self) -> None:
        await self._client.aclose()


def _arg(value: Any) -> bytes:
    """One argument in RESP (`$<length>\\r\\n<bytes>\\r\\n`)."""
    if isinstance(value, int):
        text = b"%d" % value
        return b"$%d\r\n%s\r\n" % (len(text), text)
    packed = _PACKED.get(value)
    if packed is None:
        data = value.encode()
        packed = b"$%d\r\n%s\r\n" % (len(data), data)
        if len(_PACKED) < _PACKED_LIMIT:
            _PACKED[value] = packed
    return packed


def _pack(command: bytes, script_ref: bytes, now_us: int, operations: Sequence[Operation]) -> bytes:
    """EVALSHA/EVAL <script> <numkeys> KEYS... <now> ARGV... as one RESP array."""
    n = len(operations)
    parts = [
        b"*%d\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
        % (3 + 3 * n + 1 + 9 * n, len(command), command, len(script_ref), script_ref),
        _arg(3 * n),
    ]
    for _tag, (state, ticks, dedup), _argv in operations:
        parts.append(_arg(state))
        parts.append(_arg(ticks))
        data = dedup.encode()  # a request's own id: not worth remembering
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    parts.append(_arg(now_us))
    for _tag, _keys, argv in operations:
        parts.extend(_arg(value) for value in argv)
    return b"".join(parts)


def _replies(answer: Any, count: int) -> list[Reply]:
    numbers = answer.split() if isinstance(answer, bytes | str) else ()
    if len(numbers) != 4 * count:
        raise ValueError(f"the quota script answered {answer!r} to {count} operations")
    values = [int(x) for x in numbers]
    return [(values[i], values[i + 1], values[i + 2], values[i + 3]) for i in range(0, len(values), 4)]


def _retry() -> Retry:
    # The Cluster client's own retries: one, at once, on a broken connection; never on a timeout (the
    # handler's timeout is the Check's to spend).
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))


def make_backend(params: Params) -> Backend | ClusterBackend:
    """The client for `params` (validated): nothing is sent until the handler connects."""
    address = parse_address(params.redis_server_url)
    kwargs = address.connection_kwargs()
    if params.cluster:
        timeout = params.timeout / 1e9
        kwargs.pop("db")
        cluster = RedisCluster(
            host=address.host,
            port=address.port,
            max_connections=params.connection_pool_size,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=_retry(),
            **kwargs,
        )
        return ClusterBackend(cluster, params.connection_pool_size)
    # No socket timeouts (see the module docstring), no retries inside redis-py, and RESP2, which is what
    # resp.Pipe reads once it has the connection.
    kwargs |= {
        "socket_timeout": None,
        "socket_connect_timeout": None,
        "retry": Retry(NoBackoff(), 0),
        "protocol": 2,
    }
    if params.sentinels:
        return _sentinel_backend(params, address, kwargs)
    tls = kwargs.pop("ssl", False)  # a pool takes the connection class instead
    pool = ConnectionPool(max_connections=params.connection_pool_size, **_pool_kwargs(address, tls), **kwargs)
    return Backend(pool)


def _pool_kwargs(address: Address, tls: bool) -> dict[str, Any]:
    if address.scheme == "unix":
        return {"connection_class": UnixDomainSocketConnection, "path": address.path}
    kwargs: dict[str, Any] = {"host": address.host, "port": address.port}
    if tls:
        kwargs["connection_class"] = SSLConnection
    return kwargs


def _sentinel_backend(params: Params, address: Address, kwargs: dict[str, Any]) -> Backend:
    timeout = params.timeout / 1e9
    sentinel_kwargs: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if params.sentinel_password:
        sentinel_kwargs["password"] = params.sentinel_password
    sentinel = Sentinel([parse_sentinel(s) for s in params.sentinels], sentinel_kwargs=sentinel_kwargs)
    master: Redis = sentinel.master_for(address.host, max_connections=params.connection_pool_size, **kwargs)
    return Backend(master.connection_pool, sentinel)
