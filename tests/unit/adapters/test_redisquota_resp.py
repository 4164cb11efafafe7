"""redisquota's hot-path connection (resp.py): taken over from redis-py after its handshake, calls
pipelined in order, a late reply dropped after a timeout, error replies as redis-py's exceptions, and
replies split or joined anyhow by TCP. Against a real redis-server, except where the bytes Redis would
have to send are the point (a scripted peer on a real socket)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from peers import redis as redis_peers
from redis.asyncio.connection import Connection
from redis.exceptions import BusyLoadingError, NoScriptError, ReadOnlyError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from mixerd_adapters.redisquota.resp import Pipe


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with redis_peers.RedisServer(tmp_path_factory.mktemp("redis"), password="pw") as server:
        yield server


def _command(*parts: str | bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


async def _adopted(server: Any, db: int = 0) -> Pipe:
    connection = Connection(host="127.0.0.1", port=server.port, password="pw", db=db, protocol=2)
    await connection.connect()  # AUTH and SELECT happen here, in redis-py
    pipe = Pipe.adopt(connection)
    assert not connection.is_connected  # the socket is the pipe's now
    return pipe


def _soon(seconds: float = 2.0) -> float:
    return asyncio.get_running_loop().time() + seconds


def test_an_adopted_connection_keeps_redis_pys_handshake_and_answers_in_order(redis_server: Any) -> None:
    async def scenario() -> None:
        pipe = await _adopted(redis_server, db=3)
        calls = [pipe.call(_command("INCRBY", "counter", str(n)), _soon()) for n in (1, 2, 3)]
        calls.append(pipe.call(_command("GET", "counter"), _soon()))
        calls.append(pipe.call(_command("PING"), _soon()))
        calls.append(pipe.call(_command("GET", "absent"), _soon()))
        assert pipe.in_flight == 6
        assert await asyncio.gather(*calls) == [1, 3, 6, b"6", b"PONG", None]
        assert pipe.in_flight == 0
        pipe.close()

    asyncio.run(scenario())
    with redis_server.client(db=3) as client:  # SELECT 3 from the handshake held for the pipe's calls
        assert client.get("counter") == b"6"
        client.flushdb()


def test_error_replies_are_redis_pys_exceptions_and_the_connection_goes_on(redis_server: Any) -> None:
    async def scenario() -> None:
        pipe = await _adopted(redis_server)
        missing = pipe.call(_command("EVALSHA", "0" * 40, "0"), _soon())
        wrong = pipe.call(_command("NOSUCHCOMMAND"), _soon())
        after = pipe.call(_command("PING"), _soon())
        with pytest.raises(NoScriptError, match="NOSCRIPT"):
            await missing
        with pytest.raises(ResponseError, match="unknown command") as refused:
            await wrong
        assert type(refused.value) is ResponseError
        assert await after == b"PONG"
        assert pipe.usable
        pipe.close()

    asyncio.run(scenario())


def test_a_call_past_its_deadline_times_out_and_its_late_reply_is_dropped(redis_server: Any) -> None:
    async def scenario() -> None:
        pipe = await _adopted(redis_server)
        redis_server.pause()  # the port stays open, nothing answers
        try:
            with pytest.raises(TimeoutError):
                await pipe.call(_command("ECHO", "late"), _soon(0.05))
            assert pipe.in_flight == 1  # its reply is still due
        finally:
            redis_server.resume()
        # The next call's reply is its own, not the late one.
        assert await pipe.call(_command("ECHO", "mine"), _soon()) == b"mine"
        assert pipe.in_flight == 0
        pipe.close()

    asyncio.run(scenario())


def test_a_lost_connection_fails_what_waits_and_what_comes_after(redis_server: Any) -> None:
    async def scenario() -> None:
        pipe = await _adopted(redis_server)
        with redis_server.client() as admin:
            admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        with pytest.raises(RedisConnectionError):
            await pipe.call(_command("PING"), _soon())
        assert not pipe.usable
        with pytest.raises(RedisConnectionError, match="lost"):
            await pipe.call(_command("PING"), _soon())

    asyncio.run(scenario())


# -- bytes as Redis could send them: a scripted peer on a real socket ------------------------------------


async def _scripted(answer: Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]) -> tuple[Pipe, Any]:
    """A pipe connected to a local server that runs `answer(request, writer)` for each chunk it reads."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            await answer(data, writer)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _transport, pipe = await asyncio.get_running_loop().create_connection(Pipe, "127.0.0.1", port)
    return pipe, server


@pytest.mark.parametrize("chunk", [1, 2, 5, 1000])
def test_replies_split_and_joined_anyhow_by_tcp_are_read_whole(chunk: int) -> None:
    replies = (
        b"$11\r\n1 2 3 4\r\n56\r\n+OK\r\n:-7\r\n$-1\r\n$0\r\n\r\n"
        b"-READONLY You can't write\r\n-LOADING busy\r\n"
    )

    async def answer(_request: bytes, writer: asyncio.StreamWriter) -> None:
        for i in range(0, len(replies), chunk):
            writer.write(replies[i : i + chunk])
            await writer.drain()
            await asyncio.sleep(0)

    async def scenario() -> None:
        pipe, server = await _scripted(answer)
        calls = [pipe.call(b"x", _soon()) for _ in range(7)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert results[:5] == [b"1 2 3 4\r\n56", b"OK", -7, None, b""]
        assert isinstance(results[5], ReadOnlyError) and "You can't write" in str(results[5])
        assert isinstance(results[6], BusyLoadingError)
        assert pipe.usable
        pipe.close()
        server.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("sent", "reason"),
    [(b"*1\r\n:1\r\n", "unexpected reply type '*'"), (b"+OK\r\n+OK\r\n", "a reply nobody asked for")],
)
def test_a_reply_it_cannot_read_ends_the_connection_with_the_reason(sent: bytes, reason: str) -> None:
    async def answer(_request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(sent)

    async def scenario() -> None:
        pipe, server = await _scripted(answer)
        with pytest.raises(RedisConnectionError, match="protocol error") as failed:
            await pipe.call(b"x", _soon())
            await pipe.call(b"y", _soon())  # only the second one sees the extra reply
        assert reason in str(failed.value)
        assert not pipe.usable
        server.close()

    asyncio.run(scenario())


def test_adopting_a_connection_that_is_not_connected_or_speaks_resp3_is_refused(redis_server: Any) -> None:
    with pytest.raises(RedisConnectionError, match="not connected"):
        Pipe.adopt(Connection(host="127.0.0.1", port=1, protocol=2))

    async def scenario() -> None:
        connection = Connection(host="127.0.0.1", port=redis_server.port, password="pw", protocol=3)
        await connection.connect()
        with pytest.raises(RedisConnectionError, match="RESP2"):
            Pipe.adopt(connection)
        await connection.disconnect()

    asyncio.run(scenario())
