"""envoyproxy/ratelimit's behaviours beyond matching, as its code has them (src/service/ratelimit.go,
src/config/config_impl.go, src/redis/fixed_cache_impl.go), on domains read from its own file format and
counted in memory on a manual clock: stats keys, quota and shadow modes (per descriptor and global),
stopping the count once over the limit, response headers and dynamic metadata."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from google.protobuf import json_format

from mixerd.api.envoy.service.ratelimit.v3 import rls_pb2
from mixerd.config import compile_snapshot
from mixerd.config.loader import Document
from mixerd.config.ratelimit_files import RateLimitFiles
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime
from mixerd.runtime.ratelimit import (
    OK,
    OVER_LIMIT,
    Decision,
    DescriptorRequest,
    RateLimiter,
    RateLimitOptions,
)
from mixerd.runtime.ratelimit_accounting import Hits
from mixerd.server.envoy.ratelimit import decode
from mixerd.server.envoy.ratelimit_response import ResponseOptions, encode

S = 1_000_000_000
T0 = 1_700_006_400 * S  # the start of a day


class Limits:
    """One domain `d` from an envoyproxy/ratelimit file, served by a limiter with `options`."""

    def __init__(self, text: str, options: RateLimitOptions) -> None:
        self.now = T0
        data = yaml.safe_load(f"domain: d\n{text}")
        files = RateLimitFiles("rl", ("rl/d.yaml",), (Document("rl/d.yaml", 1, data),), ())
        adapters = load_adapters()
        snapshot = compile_snapshot([], adapters, ratelimit_files=files)
        self.runtime = Runtime(adapters, clock=lambda: self.now)
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.runtime.apply(snapshot))
        self.limiter = RateLimiter(self.runtime, lambda: self.now, options=options)

    def decide(self, *descriptors: str, hits: int = 1) -> Decision:
        """`descriptors` as "k=v,k2=v2" texts."""
        requests = [
            DescriptorRequest(tuple(tuple(e.split("=", 1)) for e in d.split(",")), hits)  # type: ignore[misc]
            for d in descriptors
        ]
        return self.loop.run_until_complete(self.limiter.decide("d", requests, 1.0))

    def close(self) -> None:
        self.loop.run_until_complete(self.runtime.close())
        self.loop.close()


@pytest.fixture
def limits() -> Iterator[Any]:
    made: list[Limits] = []

    def make(text: str, **options: Any) -> Limits:
        made.append(Limits(text, RateLimitOptions(**options)))
        return made[-1]

    yield make
    for one in made:
        one.close()


def codes(decision: Decision) -> tuple[int, list[int]]:
    return decision.code, [s.code for s in decision.statuses]


# -- stats keys ------------------------------------------------------------------------------------------

STATS = """
descriptors:
  - key: noVal
    rate_limit: {unit: minute, requests_per_unit: 20}
  - key: wild
    value: foo*
    rate_limit: {unit: minute, requests_per_unit: 20}
  - key: shared
    value: s*
    share_threshold: true
    value_to_metric: true
    rate_limit: {unit: minute, requests_per_unit: 20}
  - key: client
    detailed_metric: true
    rate_limit: {unit: minute, requests_per_unit: 20}
  - key: client
    value: known
    rate_limit: {unit: minute, requests_per_unit: 20}
  - key: route
    value_to_metric: true
    descriptors:
      - key: method
        descriptors:
          - key: user
            rate_limit: {unit: minute, requests_per_unit: 20}
  - key: route
    value: fixed
    descriptors:
      - key: method
        value_to_metric: true
        descriptors:
          - key: user
            detailed_metric: true
            rate_limit: {unit: minute, requests_per_unit: 20}
  - key: service
    value: svc/*
    share_threshold: true
    descriptors:
      - key: endpoint
        detailed_metric: true
        rate_limit: {unit: minute, requests_per_unit: 20}
  - key: wild2
    value: w*
    value_to_metric: true
    rate_limit: {unit: minute, requests_per_unit: 20}
"""


@pytest.mark.parametrize(
    ("descriptor", "stat"),
    [
        ("noVal=a", "noVal"),  # the key alone: values roll up under it
        ("wild=foo1", "wild_foo*"),  # a wildcard: its pattern
        ("wild2=w1", "wild2_w1"),  # ...unless value_to_metric
        ("shared=s1", "shared_s*"),  # share_threshold wins over value_to_metric
        ("client=app-1", "client_app-1"),  # detailed_metric: the request's value
        ("client=known", "client_known"),  # a value the config has
        ("route=books,method=GET,user=ann", "route_books.method.user"),  # value_to_metric at its level only
        ("route=fixed,method=GET,user=ann", "route_fixed.method_GET.user_ann"),  # detailed: every value
        ("service=svc/users,endpoint=get", "service_svc/*.endpoint_get"),  # detailed keeps a shared pattern
    ],
)
def test_stats_keys_are_envoyproxy_ratelimits(limits: Any, descriptor: str, stat: str) -> None:
    [status] = limits(STATS).decide(descriptor).statuses
    assert status.stat == stat and status.hits.total == 1


def test_an_envoy_override_is_named_by_its_values(limits: Any) -> None:
    one = limits(STATS)
    from mixerd.config.ratelimit_model import CurrentLimit

    request = DescriptorRequest((("user", "ann"), ("path", "")), 1, CurrentLimit(5, 2))
    [status] = one.loop.run_until_complete(one.limiter.decide("d", [request], 1.0)).statuses
    assert status.stat == "user_ann.path"


# -- quota mode ------------------------------------------------------------------------------------------

QUOTAS = """
descriptors:
  - key: regular
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: q1
    quota_mode: true
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: q2
    quota_mode: true
    rate_limit: {unit: minute, requests_per_unit: 2}
  - key: free
    rate_limit: {unlimited: true}
"""


def test_quota_mode_refuses_only_when_every_quota_descriptor_is_over(limits: Any) -> None:
    one = limits(QUOTAS)
    one.decide("q1=a")
    # q1 over, q2 within: the request passes; q1's status still says OVER_LIMIT
    assert codes(one.decide("q1=a", "q2=a")) == (OK, [OVER_LIMIT, OK])
    # both over: refused
    one.decide("q2=a")
    assert codes(one.decide("q1=a", "q2=a")) == (OVER_LIMIT, [OVER_LIMIT, OVER_LIMIT])
    # alone and over: every quota descriptor of the request is over
    assert codes(one.decide("q1=a")) == (OVER_LIMIT, [OVER_LIMIT])
    # a regular descriptor over refuses the request whatever the quota ones say
    one.decide("regular=a")
    assert codes(one.decide("regular=a", "q2=b")) == (OVER_LIMIT, [OVER_LIMIT, OK])
    # an unlimited descriptor takes no part
    assert codes(one.decide("q1=a", "free=x")) == (OVER_LIMIT, [OVER_LIMIT, OK])


def test_global_quota_mode_puts_every_descriptor_in_quota_mode(limits: Any) -> None:
    one = limits(QUOTAS, quota_mode=True)
    one.decide("regular=a")
    assert codes(one.decide("regular=a")) == (OVER_LIMIT, [OVER_LIMIT])
    # a descriptor with no limit is a quota descriptor that passes
    assert codes(one.decide("regular=a", "nothing=here")) == (OK, [OVER_LIMIT, OK])


# -- shadow modes ----------------------------------------------------------------------------------------


def test_global_shadow_mode_answers_ok_overall_and_keeps_the_statuses(limits: Any) -> None:
    one = limits(QUOTAS, shadow_mode=True)
    one.decide("regular=a")
    decision = one.decide("regular=a")
    assert codes(decision) == (OK, [OVER_LIMIT]) and decision.global_shadow
    assert decision.statuses[0].hits == Hits(1, over=1)  # no shadow_mode stat: that is per descriptor
    assert not one.decide("q2=b").global_shadow  # nothing to turn


# -- stop counting once over -------------------------------------------------------------------------------

STOP = """
descriptors:
  - key: a
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: b
    rate_limit: {unit: minute, requests_per_unit: 5}
  - key: blocked
    rate_limit: {unit: minute, requests_per_unit: 0}
  - key: shadow
    shadow_mode: true
    rate_limit: {unit: minute, requests_per_unit: 1}
"""


@pytest.mark.parametrize("stop", [False, True])
def test_a_request_over_one_limit_is_counted_by_none_when_asked(limits: Any, stop: bool) -> None:
    one = limits(STOP, stop_when_over=stop)
    one.decide("a=1")
    decision = one.decide("a=1", "b=1")
    assert codes(decision) == (OVER_LIMIT, [OVER_LIMIT, OK])
    # b counted it (4 left) unless stopped (5 left)
    assert decision.statuses[1].remaining == (5 if stop else 4)
    # a limit of 0, and a shadow mode one, stop the count too (as upstream's look finds them over)
    assert one.decide("blocked=x", "b=2").statuses[1].remaining == (5 if stop else 4)
    one.decide("shadow=x")
    assert one.decide("shadow=x", "b=3").statuses[1].remaining == (5 if stop else 4)
    # nothing over: counted as usual
    assert one.decide("b=4").statuses[0].remaining == 4


# -- replaces ----------------------------------------------------------------------------------------------


def test_an_unlimited_limit_stays_unlimited_when_replaced(limits: Any) -> None:
    one = limits("""
descriptors:
  - key: vip
    rate_limit: {unlimited: true, name: vip}
  - key: ban
    rate_limit: {unit: minute, requests_per_unit: 0, replaces: [{name: vip}]}
""")
    decision = one.decide("vip=x", "ban=y")
    assert [(s.code, s.remaining, s.unlimited) for s in decision.statuses] == [
        (OK, 2**32 - 1, True),
        (OVER_LIMIT, 0, False),
    ]


# -- response headers --------------------------------------------------------------------------------------

HEADERS = ResponseOptions(headers=True)
CUSTOM = ResponseOptions(True, "A-Ratelimit-Limit", "A-Ratelimit-Remaining", "A-Ratelimit-Reset")

LIMITS = """
descriptors:
  - key: minute
    rate_limit: {unit: minute, requests_per_unit: 10}
  - key: second
    rate_limit: {unit: second, requests_per_unit: 3}
  - key: hour
    rate_limit: {unit: hour, requests_per_unit: 1}
  - key: quota
    quota_mode: true
    rate_limit: {unit: hour, requests_per_unit: 1}
"""


def headers(decision: Decision, options: ResponseOptions = HEADERS) -> list[tuple[str, str]]:
    return [(h.key, h.value) for h in encode(decision, None, options).response_headers_to_add]


def test_headers_describe_the_limit_with_the_least_left(limits: Any) -> None:
    one = limits(LIMITS)
    one.now += 42 * S + S // 2
    assert headers(one.decide("minute=a", "second=a", "nothing=here")) == [
        ("RateLimit-Limit", "3"),
        ("RateLimit-Remaining", "2"),
        ("RateLimit-Reset", "1"),  # 0.5 s left, in whole seconds
    ]
    assert headers(one.decide("minute=a"), CUSTOM) == [
        ("A-Ratelimit-Limit", "10"),
        ("A-Ratelimit-Remaining", "8"),
        ("A-Ratelimit-Reset", "18"),
    ]
    assert headers(one.decide("nothing=here")) == []
    assert headers(one.decide("minute=a"), ResponseOptions()) == []


def test_headers_describe_the_last_limit_over(limits: Any) -> None:
    one = limits(LIMITS)
    one.decide("hour=a", "quota=a")
    decision = one.decide("minute=a", "hour=a", "second=a", "quota=a")
    assert [s.code for s in decision.statuses] == [OK, OVER_LIMIT, OK, OVER_LIMIT]
    # the quota-mode one is over too, but does not refuse the request: the hour limit is described
    assert headers(decision) == [
        ("RateLimit-Limit", "1"),
        ("RateLimit-Remaining", "0"),
        ("RateLimit-Reset", "3600"),
    ]


def test_headers_are_sent_when_the_global_shadow_mode_passes_the_request(limits: Any) -> None:
    one = limits(LIMITS, shadow_mode=True)
    one.decide("hour=a")
    decision = one.decide("hour=a")
    assert decision.code == OK
    assert headers(decision)[1] == ("RateLimit-Remaining", "0")


# -- dynamic metadata ------------------------------------------------------------------------------------

METADATA = """
descriptors:
  - key: a
    metadata: {owner: {team: web, on_call: ann}, tier: gold}
    rate_limit: {unit: minute, requests_per_unit: 5}
  - key: b
    metadata: {owner: {team: api, pager: "555"}, region: eu}
    rate_limit: {unit: minute, requests_per_unit: 5}
  - key: c
    metadata: {blocked: true}
    rate_limit: {unit: minute, requests_per_unit: 0}
"""


def test_dynamic_metadata_describes_the_request_and_merges_what_passed(limits: Any) -> None:
    one = limits(METADATA)
    request = json_format.ParseDict(
        {
            "domain": "d",
            "hitsAddend": 2,
            "descriptors": [
                {"entries": [{"key": "a", "value": "1"}]},
                {"entries": [{"key": "b", "value": "2"}], "hitsAddend": 0},
                {"entries": [{"key": "c", "value": "3"}], "limit": {"requestsPerUnit": 7, "unit": "HOUR"}},
            ],
        },
        rls_pb2.RateLimitRequest(),
    )
    _, descriptors = decode(request)
    decision = one.loop.run_until_complete(one.limiter.decide("d", descriptors, 1.0))
    response = encode(decision, request, ResponseOptions(dynamic_metadata=True))
    assert json_format.MessageToDict(response.dynamic_metadata) == {
        "domain": "d",
        "hitsAddend": 2.0,
        "descriptors": [
            {"entries": ["a=1"]},
            {"entries": ["b=2"], "hitsAddend": 0.0},
            {"entries": ["c=3"], "limit": "requests_per_unit:7 unit:HOUR"},
        ],
        # a and b passed (c's override counted it instead of the config): a's values first, b's added
        "metadata": {
            "owner": {"team": "web", "on_call": "ann", "pager": "555"},
            "tier": "gold",
            "region": "eu",
        },
    }
    assert not encode(decision, request).HasField("dynamic_metadata")
