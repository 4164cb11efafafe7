"""redisquota: params and URLs (pure), the key layout, and the handler against a real redis-server on an
injected clock: fixed and rolling windows, overrides, dedup, best effort, the exhausted cache, one
script call per Check, NOSCRIPT, and Redis away (refused, killed, hung) under both fail policies.

The rolling window's agreement with memquota is test_quota_table.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from peers import redis as redis_peers
from redis.crc import key_slot

from mixerd.adapter import AdapterInfo, Code, Duration, Env, InstanceInfo, QuotaArgs, QuotaResult
from mixerd.params import ParamsError, params_to_dict, read_params
from mixerd.templates import QuotaInstance
from mixerd_adapters import redisquota
from mixerd_adapters.redisquota import Algorithm, FailPolicy, Params, Quota, validate
from mixerd_adapters.redisquota.address import Address, parse_address
from mixerd_adapters.redisquota.keys import make_bucket

MS = 1_000_000
S = 1_000 * MS
T0 = 1_700_000_000 * S
F = "f.instance.ns"  # a FIXED_WINDOW quota
R = "r.instance.ns"  # a ROLLING_WINDOW quota


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with redis_peers.RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def server(redis_server: Any) -> Any:
    """The module's Redis, emptied, its script cache flushed and its statistics reset."""
    with redis_server.client() as client:
        client.flushall()
        client.script_flush()
        client.config_resetstat()
    return redis_server


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now

    def at(self, ms: int) -> None:
        self.now = T0 + ms * MS


def _quotas(**fixed: Any) -> list[dict[str, Any]]:
    return [
        {"name": F, "maxAmount": 3, "validDuration": "1s", **fixed},
        {
            "name": R,
            "maxAmount": 3,
            "validDuration": "1500ms",
            "bucketDuration": "500ms",
            "rateLimitAlgorithm": "ROLLING_WINDOW",
        },
    ]


@contextlib.asynccontextmanager
async def handler(
    url: str, clock: Clock | None = None, **params: Any
) -> AsyncIterator[redisquota.RedisQuota]:
    """A built handler (closed the way mixerd closes it)."""
    data = {"redisServerUrl": url, "quotas": _quotas(), "timeout": "200ms", **params}
    env = Env(
        handler="rq.handler.ns",
        adapter="redisquota",
        params=read_params(Params, data),
        instances={},
        clock=clock or time.time_ns,
    )
    built = await redisquota.build(env)
    try:
        yield built
    finally:
        await env.cancel_background()
        await built.close()


async def ask(
    h: redisquota.RedisQuota, name: str, amount: int, best: bool = False, dedup: str = "", **dims: Any
) -> QuotaResult:
    return await h.handle_quota(QuotaInstance(name=name, dimensions=dims), QuotaArgs(amount, best, dedup))


async def wait_available(h: redisquota.RedisQuota, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not h.available:
        assert time.monotonic() < deadline, "the handler did not reach Redis again"
        await asyncio.sleep(0.01)


def ms(n: int) -> Duration:
    return Duration(n * MS)


# -- params and validation (pure) ---------------------------------------------------------------------


def test_defaults_are_mixers_and_the_hook() -> None:
    params = read_params(Params, None)
    assert params == Params()
    assert params_to_dict(params) == {
        "quotas": [],
        "redisServerUrl": "localhost:6379",
        "connectionPoolSize": 10,
        "cluster": False,
        "sentinels": [],
        "sentinelPassword": "",
        "timeout": "100ms",
        "failPolicy": "closed",
        "exhaustedCache": True,
        "minDeduplicationDuration": "1s",
    }
    info = redisquota.mixerd_adapter_info()
    assert isinstance(info, AdapterInfo)
    assert (info.name, info.templates, info.params, info.validate) == (
        "redisquota",
        ("quota",),
        Params,
        validate,
    )


def test_mixers_params_read_as_written_for_mixer() -> None:
    data = {
        "redisServerUrl": "redis-release-master:6379",
        "connectionPoolSize": 10,
        "quotas": [
            {
                "name": "requestcountquota.instance.istio-system",
                "maxAmount": 500,
                "validDuration": "1s",
                "bucketDuration": "500ms",
                "rateLimitAlgorithm": "ROLLING_WINDOW",
                "overrides": [{"dimensions": {"destination": "reviews"}, "maxAmount": 1}],
            }
        ],
    }
    params = read_params(Params, data)
    (quota,) = params.quotas
    assert quota.rate_limit_algorithm is Algorithm.ROLLING_WINDOW
    assert (quota.valid_duration, quota.bucket_duration) == (S, 500 * MS)
    assert read_params(Params, {"failPolicy": "open"}).fail_policy is FailPolicy.open


def test_params_problems_with_paths() -> None:
    data = {
        "redisServerUrl": "http://redis:6379",
        "connectionPoolSize": 0,
        "timeout": "0s",
        "minDeduplicationDuration": "0s",
        "sentinels": ["s1:26379", "s2:x", "s 3", "s4:1/x"],
        "cluster": True,
        "quotas": [
            {"name": F, "maxAmount": 0, "validDuration": "500us"},
            {"name": F, "maxAmount": 1, "validDuration": "1s", "rateLimitAlgorithm": "ROLLING_WINDOW"},
            {
                "maxAmount": 1,
                "validDuration": "1h",
                "bucketDuration": "100ms",
                "rateLimitAlgorithm": 1,
                "overrides": [{"maxAmount": 0}],
            },
        ],
    }
    with pytest.raises(ParamsError) as e:
        read_params(Params, data)
    assert e.value.problems == [
        (".redisServerUrl", "has scheme 'http'; use redis://, rediss:// (TLS) or unix://"),
        (".sentinels[1]", "is not host:port: Port could not be cast to integer value as 'x'"),
        (".sentinels[2]", "expected host:port, got 's 3'"),
        (".sentinels[3]", "expected host:port, got 's4:1/x'"),
        (".sentinels", "a Redis Cluster has no Sentinels: set cluster or sentinels, not both"),
        (".connectionPoolSize", "must be at least 1, got 0"),
        (".timeout", "must be greater than 0, got 0s"),
        (".minDeduplicationDuration", "must be greater than 0, got 0s"),
        (".quotas[0].maxAmount", "must be greater than 0, got 0"),
        (".quotas[0].validDuration", "must be at least 1ms, got 500µs"),
        (".quotas[1].name", f"duplicate quota '{F}' (also at .quotas[0])"),
        (".quotas[1].bucketDuration", "must be greater than 0 and less than validDuration (1s), got 0s"),
        (".quotas[2].name", "must name a quota instance by its FQN (e.g. requestcount.instance.default)"),
        (".quotas[2].bucketDuration", "makes 36000 buckets per window; at most 10000 are allowed"),
        (".quotas[2].overrides[0].dimensions", "must name at least one dimension"),
        (".quotas[2].overrides[0].maxAmount", "must be greater than 0, got 0"),
    ]


def test_a_fixed_window_ignores_bucket_duration_as_mixer_did() -> None:
    data = {"quotas": [{"name": F, "maxAmount": 1, "validDuration": "1s", "bucketDuration": "5s"}]}
    assert read_params(Params, data).quotas[0].bucket_duration == 5 * S


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("redis:6379", Address("redis", host="redis", port=6379)),
        ("10.0.0.5", Address("redis", host="10.0.0.5", port=6379)),
        (
            "redis://:s%40cret@redis:7000/2",
            Address("redis", host="redis", port=7000, password="s@cret", db=2),
        ),
        (
            "redis://app:pw@[::1]:6380?db=3",
            Address("redis", host="::1", port=6380, username="app", password="pw", db=3),
        ),
        (
            "rediss://redis.example:6380/0?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=required&ssl_check_hostname=false",
            Address(
                "rediss",
                host="redis.example",
                port=6380,
                tls={"ssl_ca_certs": "/etc/ca.pem", "ssl_cert_reqs": "required", "ssl_check_hostname": False},
            ),
        ),
        ("unix:///run/redis.sock?db=4", Address("unix", path="/run/redis.sock", db=4)),
    ],
)
def test_redis_urls(text: str, address: Address) -> None:
    assert parse_address(text) == address


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"redisServerUrl": ""}, "must name the Redis server, e.g. redis://redis:6379 or redis:6379"),
        ({"redisServerUrl": "redis://redis:99999"}, "is not a Redis URL: Port out of range 0-65535"),
        ({"redisServerUrl": "redis://:6379"}, "has no host"),
        ({"redisServerUrl": "redis://my host:6379"}, "has a space in its host 'my host'"),
        ({"redisServerUrl": "redis://redis/zero"}, "the database must be a number, got 'zero'"),
        ({"redisServerUrl": "redis://redis/1?db=2"}, "names the database twice (path and ?db=)"),
        ({"redisServerUrl": "redis://redis?ssl_ca_certs=x"}, "has unknown option ssl_ca_certs (known: db)"),
        (
            {"redisServerUrl": "rediss://redis?ssl_cert_reqs=maybe"},
            "ssl_cert_reqs must be one of none, optional, required, got 'maybe'",
        ),
        ({"redisServerUrl": "unix://"}, "unix:// needs the socket's path, e.g. unix:///run/redis/redis.sock"),
        (
            {"redisServerUrl": "unix:///r.sock", "cluster": True},
            "a Redis Cluster is reached over TCP, not a unix socket",
        ),
        (
            {"redisServerUrl": "redis://redis/1", "cluster": True},
            "a Redis Cluster has only database 0, got 1",
        ),
    ],
)
def test_bad_redis_urls(params: dict[str, Any], problem: str) -> None:
    with pytest.raises(ParamsError) as e:
        read_params(Params, params)
    assert e.value.problems == [(".redisServerUrl", problem)]


def test_the_password_is_never_logged() -> None:
    assert parse_address("redis://app:pw@redis:7000/2").redacted() == "redis://app:***@redis:7000/2"
    assert parse_address("rediss://:pw@[::1]").redacted() == "rediss://:***@[::1]:6379/0"
    assert parse_address("unix:///r.sock").redacted() == "unix:///r.sock"


def test_validate_wants_a_quota_for_every_routed_instance_and_touches_no_network() -> None:
    params = read_params(Params, {"redisServerUrl": "no-such-host.invalid:1", "quotas": _quotas()})
    instances = {
        F: InstanceInfo(F, "quota"),
        "b.instance.ns": InstanceInfo("b.instance.ns", "quota"),
    }
    assert validate(params, instances) == [(".quotas", "no quota is configured for instance 'b.instance.ns'")]
    assert validate(params, {F: instances[F]}) == []
    assert validate(Params(timeout=Duration(0)), {}) == [(".timeout", "must be greater than 0, got 0s")]


# -- the key layout -----------------------------------------------------------------------------------


def test_a_buckets_keys_share_one_cluster_slot_and_values_cannot_break_the_tag() -> None:
    params = read_params(Params, {"quotas": _quotas()})
    fixed, rolling = params.quotas
    bucket = make_bucket(rolling, (("path", "/a}{b;c=d%"), ("user", "x")))
    tag = "{r.instance.ns;path=/a%7D%7Bb%3Bc%3Dd%25;user=x}"
    assert (bucket.state, bucket.ticks, bucket.dedup) == (
        f"mixerd:quota:{tag}:r:500ms",
        f"mixerd:quota:{tag}:b:500ms",
        f"mixerd:quota:{tag}:d:",
    )
    assert len({key_slot(k.encode()) for k in (bucket.state, bucket.ticks, bucket.dedup + "id")}) == 1
    assert (bucket.buckets, bucket.max_amount, bucket.idle_ms) == (3, 3, 4_000)
    assert make_bucket(fixed, ()).state == "mixerd:quota:{f.instance.ns}:f"


# -- the handler, against redis-server -----------------------------------------------------------------


def test_fixed_window_starts_with_the_first_request_and_answers_until_its_end(server: Any) -> None:
    async def scenario() -> None:
        clock = Clock()
        async with handler(server.url, clock) as h:
            steps = [
                (0, 2, False, (2, 1000)),  # the window is [0, 1000)
                (400, 2, False, (0, 600)),  # 1 left: all or nothing
                (400, 2, True, (1, 600)),  # best effort: what is left
                (999, 1, True, (0, 1)),
                (1000, 3, False, (3, 1000)),  # a new window [1000, 2000)
                (2500, 1, False, (1, 1000)),  # idle in between: the next window is [2500, 3500)
                (2600, 0, False, (0, 900)),
                (2600, -1, False, (0, 900)),  # a rate limit cannot be given back
            ]
            for at, amount, best, (granted, valid) in steps:
                clock.at(at)
                assert await ask(h, F, amount, best) == QuotaResult(granted, ms(valid)), at

    asyncio.run(scenario())


def test_rolling_window_of_buckets(server: Any) -> None:
    async def scenario() -> None:
        clock = Clock()
        async with handler(server.url, clock) as h:  # 3 per 1.5s, in 500ms buckets
            steps = [
                (0, 2, False, 2),  # bucket 0
                (600, 2, True, 1),  # bucket 1
                (1499, 1, True, 0),
                (1500, 3, False, 0),  # bucket 0 left: 2 free
                (1500, 2, False, 2),
                (1000, 1, False, 0),  # a clock behind: counted in the newest bucket (3)
                (2000, 1, False, 1),  # bucket 1 left
                (9000, 3, False, 3),
            ]
            answers = []
            for at, amount, best, _granted in steps:
                clock.at(at)
                answers.append(await ask(h, R, amount, best))
            assert answers == [QuotaResult(granted, ms(1500)) for *_, granted in steps]

    asyncio.run(scenario())


def test_overrides_pick_the_limit_and_dimensions_pick_the_bucket(server: Any) -> None:
    async def scenario() -> None:
        quotas = _quotas(
            overrides=[
                {"dimensions": {"user": "vip", "code": "200"}, "maxAmount": 10},
                {"dimensions": {"user": "vip"}, "maxAmount": 5},
            ]
        )
        clock = Clock()
        async with handler(server.url, clock, quotas=quotas) as h:
            assert (await ask(h, F, 20, True, user="vip", code=200)).granted_amount == 10
            assert (await ask(h, F, 20, True, user="vip", code=500)).granted_amount == 5
            assert (await ask(h, F, 20, True, user="vip")).granted_amount == 5
            assert (await ask(h, F, 20, True, user="bob")).granted_amount == 3
            assert (await ask(h, F, 1, user="vip", code="200")).granted_amount == 0  # the same bucket as 200
        with server.client() as client:
            keys = sorted(k.decode() for k in client.keys("*"))
        assert keys == [
            "mixerd:quota:{f.instance.ns;code=200;user=vip}:f",
            "mixerd:quota:{f.instance.ns;code=500;user=vip}:f",
            "mixerd:quota:{f.instance.ns;user=bob}:f",
            "mixerd:quota:{f.instance.ns;user=vip}:f",
        ]

    asyncio.run(scenario())


@pytest.mark.parametrize("cache", [True, False])
def test_a_retried_request_is_answered_again_not_charged_again(server: Any, cache: bool) -> None:
    async def scenario() -> None:
        clock = Clock()
        async with handler(server.url, clock, exhaustedCache=cache) as h:
            assert await ask(h, F, 2, dedup="a") == QuotaResult(2, ms(1000))
            clock.at(300)
            assert await ask(h, F, 2, dedup="a") == QuotaResult(2, ms(700))  # not charged: 1 left
            assert await ask(h, F, 2, True, dedup="b") == QuotaResult(1, ms(700))
            assert await ask(h, F, 1, dedup="c") == QuotaResult(0, ms(700))
            clock.at(999)
            assert await ask(h, F, 2, dedup="a") == QuotaResult(2, ms(1))
            clock.at(1200)  # a new window; "a" was forgotten at 1000 (1s after its answer), "c" is not
            assert await ask(h, F, 1, dedup="c") == QuotaResult(0, ms(0))  # its validity is used up
            assert await ask(h, F, 3, dedup="d") == QuotaResult(3, ms(1000))
            clock.at(1300)  # "c" is forgotten too: a new request
            assert await ask(h, F, 1, dedup="c") == QuotaResult(0, ms(900))
            for dedup, earlier in (("r1", QuotaResult(3, ms(1500))), ("r1", QuotaResult(3, ms(1400)))):
                assert await ask(h, R, 3, dedup=dedup) == earlier
                clock.now += 100 * MS

    asyncio.run(scenario())


def test_an_unknown_instance_is_granted_nothing_as_in_mixer(server: Any) -> None:
    async def scenario() -> None:
        async with handler(server.url) as h:
            assert await ask(h, "other.instance.ns", 1) == QuotaResult(0)

    asyncio.run(scenario())


def test_all_quotas_of_a_check_cost_one_script_call(server: Any) -> None:
    async def scenario() -> None:
        clock = Clock()
        async with handler(server.url, clock) as h:
            server.reset_stats()
            calls = [
                (QuotaInstance(name=F, dimensions={"user": "a"}), QuotaArgs(1)),
                (QuotaInstance(name=F, dimensions={"user": "b"}), QuotaArgs(5, True, "x")),
                (QuotaInstance(name=R, dimensions={}), QuotaArgs(2)),
                (QuotaInstance(name="other.instance.ns"), QuotaArgs(2)),
            ]
            assert await h.handle_quotas(calls) == [
                QuotaResult(1, ms(1000)),
                QuotaResult(3, ms(1000)),
                QuotaResult(2, ms(1500)),
                QuotaResult(0),
            ]
            stats = server.commandstats()
            assert stats["evalsha"] == 1 and "eval" not in stats
            assert h.stats["redis_calls"] == 1

    asyncio.run(scenario())


def test_concurrent_checks_use_at_most_the_pool_size_of_connections_and_pipeline_beyond(server: Any) -> None:
    async def scenario() -> None:
        clock = Clock()
        with server.client() as admin:
            before = int(admin.info("clients")["connected_clients"])
            async with handler(server.url, clock, connectionPoolSize=2, quotas=_quotas(maxAmount=1000)) as h:
                answers = await asyncio.gather(*(ask(h, F, 1, dedup=f"d{i}", user="u") for i in range(40)))
                opened = int(admin.info("clients")["connected_clients"]) - before
                assert answers == [QuotaResult(1, ms(1000))] * 40
                assert opened == 2  # 40 concurrent Checks, 2 connections, so pipelined
                assert h.stats["redis_calls"] == 40
                # Each was counted once: what is left is the rest.
                assert await ask(h, F, 1000, best=True, user="u") == QuotaResult(960, ms(1000))

    asyncio.run(scenario())


def test_a_flushed_script_is_loaded_again_by_eval(server: Any) -> None:
    async def scenario() -> None:
        async with handler(server.url, Clock()) as h:
            with server.client() as client:
                client.script_flush()
            server.reset_stats()
            assert (await ask(h, F, 1)).granted_amount == 1  # NOSCRIPT, then EVAL
            assert (await ask(h, F, 1)).granted_amount == 1  # EVALSHA finds it again
            stats = server.commandstats()
            assert (stats["evalsha"], stats["eval"]) == (2, 1)

    asyncio.run(scenario())


def test_the_exhausted_cache_keeps_denials_away_from_redis_until_room_opens(server: Any) -> None:
    async def scenario() -> None:
        clock = Clock()
        async with handler(server.url, clock) as h:
            await ask(h, F, 3)
            await ask(h, R, 3)
            server.reset_stats()
            for at in (100, 500, 999):
                clock.at(at)
                assert await ask(h, F, 1) == QuotaResult(0, ms(1000 - at))
                assert await ask(h, R, 1) == QuotaResult(0, ms(1500))
            assert server.commandstats() == {}  # nothing reached Redis
            clock.at(1000)  # the fixed window ends: Redis is asked again
            assert await ask(h, F, 1) == QuotaResult(1, ms(1000))
            clock.at(1499)
            assert await ask(h, R, 1) == QuotaResult(0, ms(1500))
            clock.at(1500)  # the rolling window's first bucket leaves
            assert await ask(h, R, 1) == QuotaResult(1, ms(1500))
            assert server.commandstats()["evalsha"] == 2
            assert h.stats["cached_denials"] == 7

    asyncio.run(scenario())


def test_without_the_cache_every_request_reaches_redis(server: Any) -> None:
    async def scenario() -> None:
        clock = Clock()
        async with handler(server.url, clock, exhaustedCache=False) as h:
            await ask(h, F, 3)
            server.reset_stats()
            for at in (100, 500, 999):
                clock.at(at)
                assert await ask(h, F, 1) == QuotaResult(0, ms(1000 - at))
            assert server.commandstats()["evalsha"] == 3
            assert h.stats["cached_denials"] == 0

    asyncio.run(scenario())


def test_two_handlers_on_one_redis_share_the_count(server: Any) -> None:
    async def scenario() -> None:
        clock = Clock()
        async with handler(server.url, clock) as one, handler(server.url, clock) as two:
            granted = [(await ask(h, F, 1)).granted_amount for h in (one, two, one, two, one)]
            assert granted == [1, 1, 1, 0, 0]

    asyncio.run(scenario())


def test_concurrent_requests_never_exceed_the_limit(server: Any) -> None:
    async def scenario() -> None:
        # 200 calls queue on 2 connections: a loaded machine needs more than the 200 ms of handler().
        async with handler(server.url, connectionPoolSize=2, exhaustedCache=False, timeout="2s") as h:
            results = await asyncio.gather(*(ask(h, F, 1) for _ in range(200)))
            assert sum(r.granted_amount for r in results) == 3
            assert {r.status for r in results} == {Code.OK}

    asyncio.run(scenario())


# -- Redis away --------------------------------------------------------------------------------------


def test_unreachable_at_build_fails_closed_then_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mixerd.adapter.redisquota")
    later = redis_peers.RedisServer(tmp_path / "later")  # its port is chosen, nothing listens yet

    async def scenario() -> None:
        started = time.monotonic()
        async with handler(later.url, Clock(), timeout="50ms") as h:
            assert time.monotonic() - started < 1.0
            assert not h.available
            result = await ask(h, F, 1)
            where = f"redis://127.0.0.1:{later.port}/0"
            assert result.granted_amount == 0 and result.status == Code.UNAVAILABLE
            assert result.message.startswith(
                f"redisquota: Redis at {where} is unavailable: ConnectionError: "
            )
            later.start()
            try:
                await wait_available(h)
                assert await ask(h, F, 1) == QuotaResult(1, ms(1000))
            finally:
                later.stop()
        messages = [r.getMessage() for r in caplog.records]
        assert messages[0].startswith(f"rq.handler.ns: cannot reach Redis at {where} (ConnectionError: ")
        assert messages[0].endswith("); retrying in the background, quotas fail closed until then")
        assert messages[1:] == [f"rq.handler.ns: Redis at {where} answers again"]

    asyncio.run(scenario())


def test_fail_open_grants_what_is_asked_while_redis_is_away(tmp_path: Path) -> None:
    nothing = redis_peers.RedisServer(tmp_path / "none")

    async def scenario() -> None:
        async with handler(nothing.url, Clock(), failPolicy="open", timeout="50ms") as h:
            assert await ask(h, F, 7) == QuotaResult(7, ms(0))
            assert await ask(h, F, -1) == QuotaResult(0, ms(0))
            assert h.stats["failed"] == 2

    asyncio.run(scenario())


@pytest.mark.parametrize("policy", ["open", "closed"])
def test_redis_killed_mid_run_answers_at_once_and_recovers_without_a_rebuild(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, policy: str
) -> None:
    caplog.set_level(logging.WARNING, logger="mixerd.adapter.redisquota")
    peer = redis_peers.RedisServer(tmp_path / "redis")

    async def scenario() -> None:
        with peer:
            async with handler(peer.url, Clock(), failPolicy=policy) as h:
                assert (await ask(h, F, 1, user="a")).granted_amount == 1
                peer.kill()
                started = time.monotonic()
                answers = [await ask(h, F, 1, user=u) for u in "abcde"]
                assert time.monotonic() - started < 0.5
                assert [a.granted_amount for a in answers] == [1 if policy == "open" else 0] * 5
                expected = Code.OK if policy == "open" else Code.UNAVAILABLE
                assert {a.status for a in answers} == {expected}
                peer.start()  # empty: what was counted is gone
                await wait_available(h)
                assert await ask(h, F, 3, user="a") == QuotaResult(3, ms(1000))
        lost = [r.getMessage() for r in caplog.records]
        assert len(lost) == 1 and lost[0].startswith(f"rq.handler.ns: Redis at {peer.url}/0 is unavailable (")
        assert lost[0].endswith(f"); quotas fail {policy} until it answers again")

    asyncio.run(scenario())


def test_a_hung_redis_costs_one_timeout_then_answers_at_once(tmp_path: Path) -> None:
    peer = redis_peers.RedisServer(tmp_path / "redis")

    async def scenario() -> None:
        with peer:
            async with handler(peer.url, Clock(), timeout="100ms", failPolicy="open") as h:
                assert (await ask(h, F, 1, user="a")).granted_amount == 1
                peer.pause()
                try:
                    started = time.monotonic()
                    assert await ask(h, F, 2, user="b") == QuotaResult(2, ms(0))
                    first = time.monotonic() - started
                    started = time.monotonic()
                    assert await ask(h, F, 2, user="c") == QuotaResult(2, ms(0))
                    second = time.monotonic() - started
                finally:
                    peer.resume()
                assert 0.09 < first < 0.5 and second < 0.05
                await wait_available(h)
                # The count survived (1 of 3 used); "b", sent before the pause, was counted when Redis woke.
                assert await ask(h, F, 3, True, user="a") == QuotaResult(2, ms(1000))
                assert await ask(h, F, 3, True, user="b") == QuotaResult(1, ms(1000))

    asyncio.run(scenario())


def test_close_is_idempotent_and_stops_retrying(tmp_path: Path) -> None:
    nothing = redis_peers.RedisServer(tmp_path / "none")

    async def scenario() -> None:
        env = Env(
            handler="rq.handler.ns",
            adapter="redisquota",
            params=read_params(
                Params, {"redisServerUrl": nothing.url, "quotas": _quotas(), "timeout": "50ms"}
            ),
            instances={},
        )
        h = await redisquota.build(env)
        await env.cancel_background()
        await h.close()
        await h.close()
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(scenario())


def test_no_quotas_no_connection(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    nothing = redis_peers.RedisServer(tmp_path / "none")

    async def scenario() -> None:
        async with handler(nothing.url, quotas=[]) as h:
            assert await ask(h, F, 1) == QuotaResult(0)

    asyncio.run(scenario())
    assert caplog.records == []


def test_quota_params_model_is_mixers() -> None:
    assert [f for f in Quota.__dataclass_fields__] == [
        "name",
        "max_amount",
        "valid_duration",
        "bucket_duration",
        "rate_limit_algorithm",
        "overrides",
    ]
