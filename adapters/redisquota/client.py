"""redisquota's Redis, through async redis-py: one server, a Cluster, or a master found by Sentinels.

`run(now_us, operations)` sends one Check's operations: one EVALSHA for a single server (or a Sentinel
master), one per hash slot for a Cluster (sent together). A server that has lost the script (a restart,
SCRIPT FLUSH, a failover) answers NOSCRIPT; the same call is then made with EVAL, which runs the script
and loads it again, so the next EVALSHA finds it.

A single server (or Sentinel master) is the hot path, so it skips redis-py's generic command machinery:
the command is packed here, sent on a redis-py connection with `send_packed_command` and read back with
its parser, and connections are kept on a free list of our own (at most `connectionPoolSize`, since the
handler never has more calls in flight). Connections have no socket timeout of their own: the handler
bounds every call with `asyncio.timeout`, and a connection whose call was cut short is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import (
    AbstractConnection,
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from . import script
from .address import Address, parse_address, parse_sentinel
from .params import Params

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
        self._free: list[AbstractConnection] = []

    async def connect(self) -> None:
        """Reach the server and load the script (so the first Check finds it)."""
        await self._call(_LOAD)

    async def run(self, now_us: int, operations: Sequence[Operation]) -> list[Reply]:
        """The replies to `operations`, in order: one script call for them all."""
        try:
            answer = await self._call(_pack(b"EVALSHA", _SHA, now_us, operations))
        except NoScriptError:
            answer = await self._call(_pack(b"EVAL", _SOURCE, now_us, operations))
        return _replies(answer, len(operations))

    async def _call(self, packed: bytes) -> Any:
        """Send one packed command and read its reply. A pooled connection that turns out broken (one to a
        Redis that restarted) is dropped and the call made once more on a new one."""
        for attempt in (0, 1):
            fresh = not self._free
            connection = self._pool.make_connection() if fresh else self._free.pop()
            try:
                if fresh:  # connect() itself, not send's implicit connect: a Sentinel one asks for the master
                    await connection.connect()
                await connection.send_packed_command(packed, check_health=False)
                reply = await connection.read_response()
            except ResponseError:
                self._free.append(connection)  # Redis answered with an error: the connection is fine
                raise
            except RedisConnectionError:
                await connection.disconnect(nowait=True)
                if fresh or attempt:
                    raise
                continue
            except BaseException:  # a timeout or a cancellation: the reply may still come, so drop it
                await connection.disconnect(nowait=True)
                raise
            self._free.append(connection)
            return reply
        raise AssertionError("unreachable")

    async def reset(self) -> None:
        """Drop every idle connection (after a failure, so the next attempt starts afresh)."""
        free, self._free = self._free, []
        for connection in free:
            await connection.disconnect(nowait=True)

    async def close(self) -> None:
        await self.reset()
        await self._pool.disconnect()
        if self._sentinel is not None:
            for client in self._sentinel.sentinels:
                await client.aclose()


class ClusterBackend:
    """A Redis Cluster: one script call per hash slot, sent together, through redis-py's cluster client."""

    def __init__(self, client: RedisCluster) -> None:
        self._client = client

    async def connect(self) -> None:
        await self._client.initialize()
        await self._client.ping()

    async def run(self, now_us: int, operations: Sequence[Operation]) -> list[Reply]:
        """The replies to `operations`, in order: one script call per hash slot, all sent at once."""
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
        return ClusterBackend(cluster)
    # No socket timeouts (see the module docstring), and no retries inside redis-py.
    kwargs |= {"socket_timeout": None, "socket_connect_timeout": None, "retry": Retry(NoBackoff(), 0)}
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
