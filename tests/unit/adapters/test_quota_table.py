"""One table of quota requests on one clock, answered identically by memquota and by redisquota's rolling
window (against a real redis-server, with its exhausted-bucket cache on and off): issue 6 item 5.

The quotas are rate limits over whole seconds, counted in 100 ms buckets, which is how memquota counts
(MIXER.md 7.8); redisquota's ROLLING_WINDOW with `bucketDuration: 100ms` must agree with it exactly,
including deduplication within `minDeduplicationDuration`, overrides and best effort.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from peers import redis as redis_peers

from mixerd.adapter import Env, QuotaArgs
from mixerd.params import read_params
from mixerd.templates import QuotaInstance
from mixerd_adapters import memquota, redisquota

MS = 1_000_000
S = 1_000 * MS
T0 = 1_700_000_000 * S  # a whole second, so 100 ms buckets start on whole 100 ms
A = "a.instance.ns"
B = "b.instance.ns"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with redis_peers.RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


# (ms after T0, quota, amount, best effort, dedup id, dimensions) -> (granted, valid duration in ms)
TABLE: list[tuple[tuple[int, str, int, bool, str, dict[str, Any]], tuple[int, int]]] = [
    ((0, A, 3, False, "", {}), (3, 1000)),  # bucket 0 holds 3
    ((100, A, 3, False, "", {}), (0, 1000)),  # 2 left: all or nothing
    ((150, A, 3, True, "r1", {}), (2, 1000)),  # best effort takes the 2 (bucket 1); the window is full
    ((200, A, 1, True, "", {}), (0, 1000)),  # full: best effort gets nothing
    ((400, A, 1, False, "r1", {}), (2, 750)),  # a retry: the earlier answer, with what is left of it
    ((500, A, 1, False, "r2", {}), (0, 1000)),  # denied ...
    ((900, A, 1, False, "r2", {}), (0, 600)),  # ... and its retry is denied the same way
    ((999, A, 0, False, "", {}), (0, 1000)),  # nothing asked, nothing granted
    ((1000, A, 3, False, "", {}), (3, 1000)),  # bucket 0 left the window: its 3 are free again
    ((1050, A, -2, False, "", {}), (0, 1000)),  # a rate limit cannot be given back
    ((1100, A, 2, False, "", {}), (2, 1000)),  # bucket 1 left: 2 free
    ((1100, A, 1, True, "", {}), (0, 1000)),
    ((1200, A, 9, True, "", {"src": "x", "code": 200}), (2, 1000)),  # the first override that matches
    ((1200, A, 9, True, "", {"src": "x", "code": 404}), (3, 1000)),  # the second one
    ((1200, A, 9, True, "", {"src": "x"}), (3, 1000)),  # other dimensions: another bucket
    ((1200, A, 9, True, "", {"src": "y"}), (5, 1000)),  # no override: the quota's limit
    ((1300, A, 1, False, "", {"src": "x", "code": "200"}), (0, 1000)),  # "200" is 200 as text
    ((1300, B, 2, False, "", {}), (2, 2000)),  # a 2 s window: 20 buckets
    ((2000, B, 2, True, "", {}), (1, 2000)),
    ((3299, B, 1, False, "", {}), (0, 2000)),  # bucket 13 leaves at bucket 33
    ((3300, B, 2, False, "", {}), (2, 2000)),
    ((3300, A, 5, False, "", {}), (5, 1000)),  # long after: the window is empty
    ((60_000, A, 5, False, "q", {}), (5, 1000)),
    ((60_500, A, 5, True, "q", {}), (5, 500)),  # a retry within minDeduplicationDuration
    ((60_500, A, 1, True, "", {}), (0, 1000)),
]

MEMQUOTA = {
    "minDeduplicationDuration": "1s",
    "quotas": [
        {
            "name": A,
            "maxAmount": 5,
            "validDuration": "1s",
            "overrides": [
                {"dimensions": {"src": "x", "code": "200"}, "maxAmount": 2, "validDuration": "1s"},
                {"dimensions": {"src": "x"}, "maxAmount": 3, "validDuration": "1s"},
            ],
        },
        {"name": B, "maxAmount": 3, "validDuration": "2s"},
    ],
}


def _redisquota_params(url: str, cache: bool) -> dict[str, Any]:
    rolling = {"rateLimitAlgorithm": "ROLLING_WINDOW", "bucketDuration": "100ms"}
    return {
        "redisServerUrl": url,
        "exhaustedCache": cache,
        "minDeduplicationDuration": "1s",
        "quotas": [
            {
                "name": A,
                "maxAmount": 5,
                "validDuration": "1s",
                **rolling,
                "overrides": [
                    {"dimensions": {"src": "x", "code": "200"}, "maxAmount": 2},
                    {"dimensions": {"src": "x"}, "maxAmount": 3},
                ],
            },
            {"name": B, "maxAmount": 3, "validDuration": "2s", **rolling},
        ],
    }


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


async def _run(adapter: str, params: dict[str, Any]) -> list[tuple[int, int]]:
    clock = Clock()
    module = memquota if adapter == "memquota" else redisquota
    env = Env(
        handler="q.handler.ns",
        adapter=adapter,
        params=read_params(module.Params, params),
        instances={},
        clock=clock,
    )
    handler = module.build(env)
    if inspect.isawaitable(handler):
        handler = await handler
    answers = []
    try:
        for (ms, name, amount, best_effort, dedup, dims), _expected in TABLE:
            clock.now = T0 + ms * MS
            result = handler.handle_quota(
                QuotaInstance(name=name, dimensions=dims), QuotaArgs(amount, best_effort, dedup)
            )
            if inspect.isawaitable(result):
                result = await result
            answers.append((result.granted_amount, result.valid_duration // MS))
            assert result.status == 0, result
    finally:
        await env.cancel_background()
        close = handler.close()
        if inspect.isawaitable(close):
            await close
    return answers


EXPECTED = [expected for _request, expected in TABLE]


def test_memquota_answers_the_table() -> None:
    assert asyncio.run(_run("memquota", MEMQUOTA)) == EXPECTED


@pytest.mark.parametrize("cache", [True, False], ids=["exhausted-cache", "no-cache"])
def test_redisquota_rolling_window_answers_the_same_table(redis_server: Any, cache: bool) -> None:
    with redis_server.client() as client:
        client.flushall()
    answers = asyncio.run(_run("redisquota", _redisquota_params(redis_server.url, cache)))
    assert answers == EXPECTED
