"""One table of ShouldRateLimit requests on one clock, answered identically whichever backend counts: memquota
in memory, or redisquota in a real redis-server (with its exhausted-counter cache on and off).

The requests go through the whole decision (mixer/runtime/ratelimit.py) on a config compiled by the real
loader, so the table covers fixed and rolling windows, periods of several units, several limits on one
descriptor, wildcards, shadow mode, `requests_per_unit: 0` and hits of 0 and more than 1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from peers import redis as redis_peers

from mixerd.adapter import Duration, Env, RateLimit, RateLimitAlgorithm, RateLimitCall
from mixerd.config import compile_snapshot
from mixerd.config.loader import Document
from mixerd.params import read_params
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime
from mixerd.runtime.ratelimit import OK, OVER_LIMIT, DescriptorRequest, RateLimiter
from mixerd_adapters.memquota.ratelimit import RateLimitCounters

MS = 1_000_000
S = 1_000 * MS
T0 = 1_699_999_200 * S  # a whole hour
SEC, MIN = 1, 2

DESCRIPTORS = """
- key: user
  rate_limit: {unit: second, requests_per_unit: 3}
- key: path
  value: /api/*
  rate_limits:
  - {unit: second, requests_per_unit: 5, algorithm: ROLLING_WINDOW, bucket_duration: 100ms}
  - {unit: minute, requests_per_unit: 8}
- key: ip
  rate_limit:
    unit: second
    unit_multiplier: 2
    requests_per_unit: 2
    algorithm: ROLLING_WINDOW
    bucket_duration: 500ms
- key: blocked
  rate_limit: {unit: second, requests_per_unit: 0}
- key: shadow
  shadow_mode: true
  rate_limit: {unit: second, requests_per_unit: 1}
"""

#: (ms after T0, [(descriptor "key=value", hits), ...]) -> [(code, remaining, reset ms, (limit, unit)), ...]
TABLE: list[tuple[tuple[int, list[tuple[str, int]]], list[tuple[int, int, int, tuple[int, int] | None]]]] = [
    ((0, [("user=ann", 2)]), [(OK, 1, 1000, (3, SEC))]),
    ((100, [("user=ann", 2)]), [(OVER_LIMIT, 1, 1000, (3, SEC))]),  # all or nothing: not counted
    ((200, [("user=ann", 1)]), [(OK, 0, 1000, (3, SEC))]),
    ((999, [("user=ann", 0)]), [(OK, 0, 1000, (3, SEC))]),  # hits 0: a look; resets in whole seconds
    ((1000, [("user=ann", 1), ("user=bob", 1)]), [(OK, 2, 1000, (3, SEC))] * 2),  # a new window
    # Two limits: the rolling second (5 in 100 ms buckets) and the fixed minute (8); the least left shows.
    ((1000, [("path=/api/x", 3)]), [(OK, 2, 1000, (5, SEC))]),
    ((1300, [("path=/api/x", 3)]), [(OVER_LIMIT, 2, 1000, (5, SEC))]),  # the minute counted it: 6 of 8
    ((1950, [("path=/api/y", 2)]), [(OK, 3, 1000, (5, SEC))]),  # another value: its own counters
    ((2000, [("path=/api/x", 2)]), [(OK, 0, 58_000, (8, MIN))]),  # the 3 at 1000 left the second
    ((2100, [("path=/api/x", 1)]), [(OVER_LIMIT, 0, 58_000, (8, MIN))]),
    # A rolling window of 2 seconds in 500 ms buckets.
    ((2100, [("ip=10.0.0.1", 2)]), [(OK, 0, 2000, (2, SEC))]),
    ((3999, [("ip=10.0.0.1", 1)]), [(OVER_LIMIT, 0, 1000, (2, SEC))]),
    ((4000, [("ip=10.0.0.1", 1)]), [(OK, 1, 2000, (2, SEC))]),
    ((4250, [("blocked=x", 1), ("nothing=here", 1)]), [(OVER_LIMIT, 0, 1000, (0, SEC)), (OK, 0, 0, None)]),
    ((4300, [("shadow=x", 1), ("shadow=x", 1)]), [(OK, 0, 1000, (1, SEC))] * 2),  # the 2nd is over: OK anyway
    ((60_000, [("path=/api/x", 6)]), [(OVER_LIMIT, 5, 0, (5, SEC))]),  # never fits the second's 5
    # The minute counted those 6 (2 left), the second counts these 5 (each limit counts on its own).
    ((60_000, [("path=/api/x", 5)]), [(OVER_LIMIT, 2, 60_000, (8, MIN))]),
    ((60_050, [("path=/api/x", 0)]), [(OK, 0, 1000, (5, SEC))]),
]
EXPECTED = [expected for _request, expected in TABLE]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def _documents(adapter: str, params: dict[str, Any]) -> list[Document]:
    docs = [
        {
            "apiVersion": "config.istio.io/v1alpha2",
            "kind": "handler",
            "metadata": {"name": "counter", "namespace": "istio-system"},
            "spec": {"compiledAdapter": adapter, "params": params},
        },
        {
            "apiVersion": "config.istio.io/v1alpha2",
            "kind": "ratelimitconfig",
            "metadata": {"name": "edge", "namespace": "istio-system"},
            "spec": {"domain": "edge", "handler": "counter", "descriptors": yaml.safe_load(DESCRIPTORS)},
        },
    ]
    return [Document("ratelimit.yaml", i + 1, doc) for i, doc in enumerate(docs)]


async def _run(adapter: str, params: dict[str, Any]) -> list[list[tuple[int, int, int, Any]]]:
    clock = Clock()
    adapters = load_adapters()
    runtime = Runtime(adapters, clock=clock)
    await runtime.apply(compile_snapshot(_documents(adapter, params), adapters))
    limiter = RateLimiter(runtime, clock)
    answers = []
    try:
        for (ms, descriptors), _expected in TABLE:
            clock.now = T0 + ms * MS
            requests = [DescriptorRequest((tuple(e.split("=", 1)),), hits) for e, hits in descriptors]  # type: ignore[misc]
            decision = await limiter.decide("edge", requests, 1.0)
            assert decision.backend_errors == 0
            answers.append(
                [
                    (
                        s.code,
                        s.remaining,
                        s.reset // MS,
                        (s.current.requests_per_unit, s.current.unit) if s.current else None,
                    )
                    for s in decision.statuses
                ]
            )
    finally:
        await runtime.close()
    return answers


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with redis_peers.RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


def test_memquota_answers_the_table() -> None:
    assert asyncio.run(_run("memquota", {})) == EXPECTED


@pytest.mark.parametrize("cache", [True, False], ids=["exhausted-cache", "no-cache"])
def test_redisquota_answers_the_same_table(redis_server: Any, cache: bool) -> None:
    with redis_server.client() as client:
        client.flushall()
    params = {"redisServerUrl": redis_server.url, "exhaustedCache": cache}
    assert asyncio.run(_run("redisquota", params)) == EXPECTED
    with redis_server.client() as client:
        keys = sorted(k.decode() for k in client.keys("*"))
    # The key layout (keys.py): a state per fixed counter; a state and a bucket list per rolling one.
    assert "mixerd:ratelimit:{edge;user=ann;1s}:a" in keys
    assert "mixerd:ratelimit:{edge;path=/api/x;1s}:r:100ms" in keys
    assert "mixerd:ratelimit:{edge;path=/api/x;1s}:b:100ms" in keys
    assert "mixerd:ratelimit:{edge;ip=10.0.0.1;2s}:b:500ms" in keys
    assert not any("blocked" in k for k in keys)  # requests_per_unit 0 never reaches Redis


def test_redisquota_rate_limits_escape_their_keys(redis_server: Any) -> None:
    async def scenario() -> list[str]:
        env = Env(
            handler="rq.handler.ns",
            adapter="redisquota",
            params=read_params(load_adapters()["redisquota"].params, {"redisServerUrl": redis_server.url}),
            instances={},
            clock=Clock(),
        )
        handler = await load_adapters()["redisquota"].build(env)
        try:
            limit = RateLimit(5, Duration(S))
            [result] = await handler.handle_rate_limits([RateLimitCall("d;x", (("k{", "v}=%"),), limit)])
            assert result.allowed and result.remaining == 4
        finally:
            await env.cancel_background()
            await handler.close()
        with redis_server.client() as client:
            return [k.decode() for k in client.keys("mixerd:ratelimit:{d%3Bx*")]

    assert asyncio.run(scenario()) == ["mixerd:ratelimit:{d%3Bx;k%7B=v%7D%3D%25;1s}:a"]


def test_memquota_drops_counters_whose_window_has_passed() -> None:
    clock = Clock()
    counters = RateLimitCounters(clock)
    fixed = RateLimit(1, Duration(S))
    rolling = RateLimit(1, Duration(S), RateLimitAlgorithm.ROLLING_WINDOW, Duration(100 * MS))

    def calls(first: int) -> list[RateLimitCall]:
        users = range(first, first + 1024)
        return [RateLimitCall("d", (("user", str(i)),), fixed if i % 2 else rolling) for i in users]

    assert all(r.allowed for r in counters.handle(calls(0)))
    assert len(counters) == 1024  # swept at 1024 counters: all still live
    clock.now += 2 * S
    assert all(r.allowed for r in counters.handle(calls(1024)))
    assert len(counters) == 1024  # swept at 2048: the first 1024 had passed
    assert all(r.allowed for r in counters.handle(calls(0)[:2]))  # and start again from nothing
