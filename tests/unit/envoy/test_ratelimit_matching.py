"""The rate limit service's decisions (mixer/runtime/ratelimit.py): envoyproxy/ratelimit's matching and
semantics, on a config compiled by the real loader, counted by memquota (or a recording handler) on a
manual clock.

Each test asks `decide` about one request and checks every status: (code, remaining, reset in ms, the
current limit as (requests_per_unit, unit, name) or None).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from mixerd.adapter import AdapterInfo, Code, Duration, RateLimitCall, RateLimitResult
from mixerd.config import compile_snapshot
from mixerd.config.loader import Document
from mixerd.config.ratelimit_model import CurrentLimit
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime
from mixerd.runtime.ratelimit import (
    MAX_REQUESTS_PER_UNIT,
    OK,
    OVER_LIMIT,
    Decision,
    DescriptorRequest,
    RateLimiter,
    RateLimitFailed,
    match,
)
from mixerd.runtime.ratelimit_accounting import Hits
from mixerd_adapters.memquota import Params as MemQuotaParams

MS = 1_000_000
S = 1_000 * MS
T0 = 1_699_999_200 * S  # a whole hour: windows of a second, a minute and an hour all start here
SECOND, MINUTE, HOUR = 1, 2, 3


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@dataclass
class Recorder:
    """A handler that records each handle_rate_limits call and answers from `answers` (or allows all)."""

    batches: list[list[RateLimitCall]] = field(default_factory=list)
    answers: list[RateLimitResult] | None = None
    fail: Exception | None = None

    def handle_rate_limits(self, calls: Sequence[RateLimitCall]) -> list[RateLimitResult]:
        self.batches.append(list(calls))
        if self.fail is not None:
            raise self.fail
        if self.answers is not None:
            return self.answers
        return [RateLimitResult(True, c.limit.max_amount - c.hits, Duration(S)) for c in calls]


RECORDER = Recorder()


def _adapters() -> dict[str, AdapterInfo]:
    recording = AdapterInfo(
        name="recording",
        templates=("quota",),
        params=MemQuotaParams,
        build=lambda env: RECORDER,
        rate_limits=True,
    )
    return {**load_adapters(), "recording": recording}


def _documents(descriptors: list[dict[str, Any]], adapter: str) -> list[Document]:
    docs = [
        {
            "apiVersion": "config.istio.io/v1alpha2",
            "kind": "handler",
            "metadata": {"name": "counter", "namespace": "istio-system"},
            "spec": {"compiledAdapter": adapter},
        },
        {
            "apiVersion": "config.istio.io/v1alpha2",
            "kind": "ratelimitconfig",
            "metadata": {"name": "edge", "namespace": "istio-system"},
            "spec": {"domain": "edge", "handler": "counter", "descriptors": descriptors},
        },
    ]
    return [Document("ratelimit.yaml", i + 1, doc) for i, doc in enumerate(docs)]


class Service:
    """A runtime with one domain `edge` (and its handler), and the limiter that serves it."""

    def __init__(self, descriptors: str, adapter: str = "memquota") -> None:
        self.clock = Clock()
        adapters = _adapters()
        snapshot = compile_snapshot(_documents(yaml.safe_load(descriptors), adapter), adapters)
        self.runtime = Runtime(adapters, clock=self.clock)
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.runtime.apply(snapshot))
        self.limiter = RateLimiter(self.runtime, self.clock)

    def decide(self, *descriptors: DescriptorRequest, domain: str = "edge") -> Decision:
        return self.loop.run_until_complete(self.limiter.decide(domain, descriptors, 1.0))

    def ask(
        self, *descriptors: DescriptorRequest | Sequence[tuple[str, str]], domain: str = "edge"
    ) -> list[Any]:
        """(code, remaining, reset ms, current limit) for each descriptor (a list of entries means hits 1)."""
        requests = [
            d if isinstance(d, DescriptorRequest) else DescriptorRequest(tuple(d)) for d in descriptors
        ]
        decision = self.decide(*requests, domain=domain)
        code = OVER_LIMIT if any(s.code == OVER_LIMIT for s in decision.statuses) else OK
        assert decision.code == code
        return [
            (
                s.code,
                s.remaining,
                s.reset // MS,
                (s.current.requests_per_unit, s.current.unit, s.current.name) if s.current else None,
            )
            for s in decision.statuses
        ]

    def close(self) -> None:
        self.loop.run_until_complete(self.runtime.close())
        self.loop.close()


@pytest.fixture
def service() -> Iterator[Any]:
    made: list[Service] = []

    def make(descriptors: str, adapter: str = "memquota") -> Service:
        made.append(Service(descriptors, adapter))
        return made[-1]

    RECORDER.batches.clear()
    RECORDER.answers = RECORDER.fail = None
    yield make
    for s in made:
        s.close()


def d(*entries: str, hits: int = 1, override: tuple[int, int] | None = None) -> DescriptorRequest:
    """A request descriptor from "key=value" texts."""
    pairs = tuple(tuple(e.split("=", 1)) for e in entries)
    limit = CurrentLimit(*override) if override else None
    return DescriptorRequest(pairs, hits, limit)  # type: ignore[arg-type]


NO_LIMIT = (OK, 0, 0, None)


# -- matching ------------------------------------------------------------------------------------------

NESTED = """
- key: tenant
  rate_limit: {unit: second, requests_per_unit: 5}
  descriptors:
  - key: user
    rate_limit: {unit: second, requests_per_unit: 2}
"""


def test_limits_apply_only_at_the_requests_own_depth(service: Any) -> None:
    s = service(NESTED)
    assert s.ask(d("tenant=acme")) == [(OK, 4, 1000, (5, SECOND, ""))]
    assert s.ask(d("tenant=acme", "user=bob")) == [(OK, 1, 1000, (2, SECOND, ""))]
    # Deeper than the config: no limit, even though tenant and user both match on the way.
    assert s.ask(d("tenant=acme", "user=bob", "path=/x")) == [NO_LIMIT]
    # A first entry the config does not have: nothing matches.
    assert s.ask(d("user=bob")) == [NO_LIMIT]


def test_each_distinct_value_of_a_key_only_descriptor_has_its_own_counter(service: Any) -> None:
    s = service("[{key: user, rate_limit: {unit: minute, requests_per_unit: 1}}]")
    assert s.ask(d("user=ann"), d("user=bob")) == [(OK, 0, 60_000, (1, MINUTE, ""))] * 2
    assert s.ask(d("user=ann")) == [(OVER_LIMIT, 0, 60_000, (1, MINUTE, ""))]


SPECIFIC = """
- key: path
  rate_limit: {unit: second, requests_per_unit: 100, name: any-path}
- key: path
  value: /api/*/users/*
  rate_limit: {unit: second, requests_per_unit: 30, name: users}
- key: path
  value: /api/*
  rate_limit: {unit: second, requests_per_unit: 20, name: api}
  descriptors:
  - key: method
    rate_limit: {unit: second, requests_per_unit: 3, name: api-method}
- key: path
  value: /api/health
  rate_limit: {unit: second, requests_per_unit: 10, name: health}
"""


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/health", "health"),  # key and value, before any wildcard
        ("/api/v1/users/42", "users"),  # wildcards in the middle and at the end, first in config order
        ("/api/v1/users/", "users"),  # `*` matches nothing too
        ("/api/v1/orders", "api"),  # a trailing wildcard
        ("/api/", "api"),
        ("/static/app.js", "any-path"),  # the key alone: the last resort
    ],
)
def test_the_most_specific_descriptor_wins(service: Any, path: str, name: str) -> None:
    s = service(SPECIFIC)
    [(code, _, _, current)] = s.ask(d(f"path={path}"))
    assert (code, current[2]) == (OK, name)


def test_a_more_specific_match_does_not_fall_back_for_the_next_level(service: Any) -> None:
    # /api/health matches exactly; that descriptor has no children, so (path, method) gets no limit,
    # although the wildcard /api/* does have a `method` child (envoyproxy/ratelimit walks one path).
    s = service(SPECIFIC)
    assert s.ask(d("path=/api/health", "method=GET")) == [NO_LIMIT]
    assert s.ask(d("path=/api/v1", "method=GET"))[0][3] == (3, SECOND, "api-method")


def test_wildcard_matches_count_per_value_unless_they_share_the_threshold(service: Any) -> None:
    s = service("""
- key: path
  value: /a/*
  rate_limit: {unit: second, requests_per_unit: 1}
- key: path
  value: /b/*
  share_threshold: true
  rate_limit: {unit: second, requests_per_unit: 1}
""")
    assert [c for c, *_ in s.ask(d("path=/a/1"), d("path=/a/2"))] == [OK, OK]
    assert [c for c, *_ in s.ask(d("path=/b/1"), d("path=/b/2"))] == [OK, OVER_LIMIT]


def test_wildcards_take_time_linear_in_the_value(service: Any) -> None:
    """A backtracking engine needs 14 s for a 500-character value here, and O(n^4) beyond (RE2: linear)."""
    s = service("""
- key: path
  value: "*a*a*a*b"
  rate_limit: {unit: second, requests_per_unit: 5, name: abab}
- key: path
  rate_limit: {unit: second, requests_per_unit: 7, name: any-path}
""")
    assert s.ask(d("path=" + "a" * 60_000))[0][3][2] == "any-path"
    assert s.ask(d("path=" + "a" * 60_000 + "b"))[0][3][2] == "abab"


def test_match_names_the_counter_by_the_request_values() -> None:
    s = Service("""
- key: path
  value: /b/*
  share_threshold: true
  descriptors: [{key: user, rate_limit: {unit: second, requests_per_unit: 1}}]
""")
    try:
        table = s.runtime.table.rate_limits["edge"].domain.descriptors
        found = match(table, [("path", "/b/9"), ("user", "ann")])
        assert found is not None and found.counter == (("path", "/b/*"), ("user", "ann"))
        assert match(table, [("path", "/c"), ("user", "ann")]) is None
    finally:
        s.close()


# -- limits ----------------------------------------------------------------------------------------------


def test_the_request_after_the_limit_is_over_until_the_window_resets(service: Any) -> None:
    s = service("[{key: remote_address, rate_limit: {unit: second, requests_per_unit: 3}}]")
    answers = [s.ask(d("remote_address=10.0.0.1"))[0] for _ in range(4)]
    assert [(code, left) for code, left, *_ in answers] == [(OK, 2), (OK, 1), (OK, 0), (OVER_LIMIT, 0)]
    s.clock.now += 700 * MS
    # 300 ms left, in whole seconds (rounded up), as envoyproxy/ratelimit answers: `unit - now % unit`
    assert s.ask(d("remote_address=10.0.0.1")) == [(OVER_LIMIT, 0, 1000, (3, SECOND, ""))]
    s.clock.now += 300 * MS  # the next whole second: a new window
    assert s.ask(d("remote_address=10.0.0.1")) == [(OK, 2, 1000, (3, SECOND, ""))]


def test_unlimited_answers_ok_with_the_largest_remaining_and_counts_nothing(service: Any) -> None:
    s = service(
        """
- key: user
  value: admin
  rate_limit: {unlimited: true}
- key: user
  rate_limit: {unit: second, requests_per_unit: 1}
""",
        "recording",
    )
    assert s.ask(d("user=admin")) == [(OK, MAX_REQUESTS_PER_UNIT, 0, None)]
    assert RECORDER.batches == []


def test_zero_requests_per_unit_blocks_without_asking_the_backend(service: Any) -> None:
    s = service(
        "[{key: remote_address, value: 6.6.6.6, rate_limit: {unit: minute, requests_per_unit: 0}}]",
        "recording",
    )
    s.clock.now += 15 * S
    assert s.ask(d("remote_address=6.6.6.6")) == [(OVER_LIMIT, 0, 45_000, (0, MINUTE, ""))]
    assert s.ask(d("remote_address=6.6.6.6", hits=0)) == [(OK, 0, 45_000, (0, MINUTE, ""))]
    assert RECORDER.batches == []


def test_shadow_mode_counts_but_answers_ok(service: Any) -> None:
    s = service("[{key: user, shadow_mode: true, rate_limit: {unit: second, requests_per_unit: 1}}]")
    assert s.ask(d("user=ann")) == [(OK, 0, 1000, (1, SECOND, ""))]
    decision = s.decide(d("user=ann"))
    assert decision.code == OK and decision.statuses[0].hits == Hits(1, over=1, shadow=1)
    assert decision.statuses[0].remaining == 0


REPLACES = """
- key: remote_address
  rate_limit: {unit: second, requests_per_unit: 2, name: per-ip}
- key: user
  value: partner
  rate_limit:
    unit: second
    requests_per_unit: 100
    replaces: [{name: per-ip}]
"""


def test_a_limit_replaces_a_named_limit_of_another_descriptor(service: Any) -> None:
    s = service(REPLACES)
    # With the partner descriptor in the request, the per-ip limit is dropped: no status limit for it.
    for i in range(3):
        partner = (OK, 99 - i, 1000, (100, SECOND, ""))
        assert s.ask(d("remote_address=1.1.1.1"), d("user=partner")) == [NO_LIMIT, partner]
    # Without it, the per-ip limit applies (and has counted nothing so far).
    assert s.ask(d("remote_address=1.1.1.1")) == [(OK, 1, 1000, (2, SECOND, "per-ip"))]
    assert s.ask(d("remote_address=1.1.1.1"), d("user=other")) == [
        (OK, 0, 1000, (2, SECOND, "per-ip")),
        NO_LIMIT,
    ]


def test_several_limits_on_one_descriptor_must_all_pass(service: Any) -> None:
    s = service("""
- key: user
  rate_limits:
  - {unit: second, requests_per_unit: 2, name: burst}
  - {unit: minute, requests_per_unit: 3, name: sustained}
""")
    # OK answers report the limit with the least left.
    assert s.ask(d("user=ann")) == [(OK, 1, 1000, (2, SECOND, "burst"))]
    assert s.ask(d("user=ann")) == [(OK, 0, 1000, (2, SECOND, "burst"))]
    s.clock.now += S
    assert s.ask(d("user=ann")) == [(OK, 0, 59_000, (3, MINUTE, "sustained"))]
    # The burst limit has room again; the sustained one does not: over, reported with that limit.
    s.clock.now += S
    assert s.ask(d("user=ann")) == [(OVER_LIMIT, 0, 58_000, (3, MINUTE, "sustained"))]
    # Each limit counts on its own: a request one limit refuses still counts against the others.
    burst = (2, SECOND, "burst")
    assert s.ask(d("user=bob"), d("user=bob")) == [(OK, 1, 1000, burst), (OK, 0, 1000, burst)]
    assert s.ask(d("user=bob")) == [(OVER_LIMIT, 0, 1000, (2, SECOND, "burst"))]
    s.clock.now += S
    assert s.ask(d("user=bob")) == [(OVER_LIMIT, 0, 57_000, (3, MINUTE, "sustained"))]


def test_a_period_of_several_units_and_a_rolling_window(service: Any) -> None:
    s = service("""
- key: fixed
  rate_limit: {unit: minute, unit_multiplier: 5, requests_per_unit: 1}
- key: rolling
  rate_limit: {unit: second, requests_per_unit: 2, algorithm: ROLLING_WINDOW, bucket_duration: 100ms}
""")
    s.clock.now += 90 * S
    assert s.ask(d("fixed=x")) == [(OK, 0, 210_000, (1, MINUTE, ""))]  # windows of 5 minutes
    assert s.ask(d("rolling=x")) == [(OK, 1, 1000, (2, SECOND, ""))]
    s.clock.now += 500 * MS
    # room opens when the first leaves, in 500 ms: 1 s in whole seconds
    assert s.ask(d("rolling=x")) == [(OK, 0, 1000, (2, SECOND, ""))]
    s.clock.now += 499 * MS
    assert s.ask(d("rolling=x"))[0][0] == OVER_LIMIT
    s.clock.now += 1 * MS  # the first request's bucket has left the window
    assert s.ask(d("rolling=x")) == [(OK, 0, 1000, (2, SECOND, ""))]


def test_envoys_limit_override_counts_instead_of_the_config(service: Any) -> None:
    s = service("[{key: user, rate_limit: {unit: second, requests_per_unit: 100}}]")
    override = d("user=ann", override=(1, MINUTE))
    assert s.ask(override) == [(OK, 0, 60_000, (1, MINUTE, ""))]
    assert s.ask(override) == [(OVER_LIMIT, 0, 60_000, (1, MINUTE, ""))]
    # Also for entries the config has no descriptor for.
    assert s.ask(d("nothing=here", override=(0, SECOND))) == [(OVER_LIMIT, 0, 1000, (0, SECOND, ""))]


def test_hits_count_as_many_and_all_or_nothing(service: Any) -> None:
    s = service("[{key: user, rate_limit: {unit: second, requests_per_unit: 10}}]")
    assert s.ask(d("user=ann", hits=7)) == [(OK, 3, 1000, (10, SECOND, ""))]
    assert s.ask(d("user=ann", hits=4)) == [(OVER_LIMIT, 3, 1000, (10, SECOND, ""))]  # not counted
    assert s.ask(d("user=ann", hits=0)) == [(OK, 3, 1000, (10, SECOND, ""))]  # a look that counts nothing
    assert s.ask(d("user=ann", hits=3)) == [(OK, 0, 1000, (10, SECOND, ""))]


def test_statuses_follow_the_request_order(service: Any) -> None:
    s = service("""
- key: a
  rate_limit: {unit: second, requests_per_unit: 1}
- key: b
  rate_limit: {unit: minute, requests_per_unit: 5}
""")
    s.ask(d("a=1"))
    assert s.ask(d("b=1"), d("zz=1"), d("a=1")) == [
        (OK, 4, 60_000, (5, MINUTE, "")),
        NO_LIMIT,
        (OVER_LIMIT, 0, 1000, (1, SECOND, "")),
    ]


def test_an_unknown_domain_answers_ok(service: Any) -> None:
    s = service("[{key: a, rate_limit: {unit: second, requests_per_unit: 0}}]")
    decision = s.decide(d("a=1"), d("b=2"), domain="other")
    assert (decision.code, decision.known) == (OK, False)
    assert [(x.code, x.current) for x in decision.statuses] == [(OK, None), (OK, None)]


# -- the backend call --------------------------------------------------------------------------------------


def test_every_counted_limit_of_a_request_goes_to_the_handler_in_one_call(service: Any) -> None:
    s = service(
        """
- key: a
  rate_limits:
  - {unit: second, requests_per_unit: 10}
  - {unit: hour, requests_per_unit: 100, algorithm: ROLLING_WINDOW, bucket_duration: 1m}
- key: b
  rate_limit: {unit: second, requests_per_unit: 0}
- key: c
  rate_limit: {unlimited: true}
""",
        "recording",
    )
    s.ask(d("a=1", hits=2), d("b=1"), d("c=1"), d("a=2"))
    [batch] = RECORDER.batches
    assert [(c.domain, c.entries, c.limit.max_amount, c.limit.window // S, c.hits) for c in batch] == [
        ("edge", (("a", "1"),), 10, 1, 2),
        ("edge", (("a", "1"),), 100, 3600, 2),
        ("edge", (("a", "2"),), 10, 1, 1),
        ("edge", (("a", "2"),), 100, 3600, 1),
    ]
    assert batch[1].limit.bucket_duration == 60 * S


def test_a_failure_answer_from_the_backend_is_counted(service: Any) -> None:
    s = service("[{key: a, rate_limit: {unit: second, requests_per_unit: 10}}]", "recording")
    RECORDER.answers = [RateLimitResult(False, 0, Duration(0), Code.UNAVAILABLE, "redis is away")]
    decision = s.decide(d("a=1"))
    assert (decision.code, decision.backend_errors) == (OVER_LIMIT, 1)


@pytest.mark.parametrize(
    ("fail", "answers", "message"),
    [
        (RuntimeError("boom"), None, "handler counter.handler.istio-system: RuntimeError: boom"),
        (
            None,
            [],
            "handler counter.handler.istio-system: handle_rate_limits answered 0 results for 1 limits",
        ),
    ],
)
def test_a_handler_that_fails_fails_the_request(service: Any, fail: Any, answers: Any, message: str) -> None:
    s = service("[{key: a, rate_limit: {unit: second, requests_per_unit: 10}}]", "recording")
    RECORDER.fail, RECORDER.answers = fail, answers
    with pytest.raises(RateLimitFailed) as e:
        s.decide(d("a=1"))
    assert str(e.value) == message
