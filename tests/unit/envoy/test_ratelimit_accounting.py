"""How a descriptor's hits split into envoyproxy/ratelimit's stats (mixer/runtime/ratelimit_accounting.py),
from what its limiter does (src/limiter/base_limiter.go): by where the counter stood before and after the
hits, against the limit and the near-limit threshold floor(limit * ratio) in float32."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mixerd.runtime.ratelimit_accounting import Hits, account, near_threshold, whole_seconds

S = 1_000_000_000


@pytest.mark.parametrize(
    ("limit", "ratio", "threshold"),
    [
        (10, 0.8, 8),
        (5, 0.8, 4),  # float32(5) * float32(0.8) is 4.0000000596..., float32 4.0
        (2, 0.8, 1),
        (1, 0.8, 0),
        (0, 0.8, 0),
        (100, 0.5, 50),
        (3, 1.0, 3),
        (4_294_967_295, 0.8, 3_435_973_888),  # float32 cannot hold 0.8 of it exactly
    ],
)
def test_the_near_limit_threshold(limit: int, ratio: float, threshold: int) -> None:
    assert near_threshold(limit, ratio) == threshold


@pytest.mark.parametrize(
    ("before", "hits", "expected"),
    [
        # limit 10, near from 8: within it, every hit of the call is within_limit...
        (0, 1, Hits(1, within=1)),
        (7, 1, Hits(1, within=1)),
        # ...and the hits past 8 are near_limit too (only those, not the whole call)
        (7, 2, Hits(2, within=2, near=1)),
        (8, 2, Hits(2, within=2, near=2)),
        (0, 10, Hits(10, within=10, near=2)),
        # past 10: over_limit gets the hits past 10, near_limit the ones between 8 and 10; no within_limit
        (9, 3, Hits(3, near=1, over=2)),
        (5, 7, Hits(7, near=2, over=2)),
        (10, 1, Hits(1, over=1)),
        (10, 5, Hits(5, over=5)),
        (15, 1, Hits(1, over=1)),  # already past: all over
        # a look (hits 0) counts nothing
        (9, 0, Hits(0)),
    ],
)
def test_hits_split_by_where_the_counter_stood(before: int, hits: int, expected: Hits) -> None:
    assert account(10, before, hits, 0.8, shadow=False) == expected


def test_shadow_mode_counts_the_hits_past_the_limit_again() -> None:
    assert account(10, 9, 3, 0.8, shadow=True) == Hits(3, near=1, over=2, shadow=2)
    assert account(10, 12, 3, 0.8, shadow=True) == Hits(3, over=3, shadow=3)
    assert account(10, 0, 3, 0.8, shadow=True) == Hits(3, within=3)


def test_a_limit_of_zero_has_every_hit_over() -> None:
    assert account(0, 0, 4, 0.8, shadow=False) == Hits(4, over=4)


@pytest.mark.parametrize(
    ("ns", "seconds"),
    [(0, 0), (1, 1), (S // 3, 1), (S, 1), (S + 1, 2), (59 * S + S // 2, 60), (60 * S, 60), (-5, 0)],
)
def test_resets_are_whole_seconds_rounded_up(ns: int, seconds: int) -> None:
    # envoyproxy/ratelimit answers `unit - now % unit` in whole seconds of Unix time: with 300 ms of a
    # second left that is 1, never 0 (X-RateLimit-Reset would then say the limit is already free).
    assert whole_seconds(ns) == seconds * S


@given(
    limit=st.integers(0, 1000),
    before=st.integers(0, 1200),
    hits=st.integers(0, 300),
    ratio=st.sampled_from([0.0, 0.5, 0.8, 0.9, 1.0]),
    shadow=st.booleans(),
)
def test_every_hit_is_within_or_over_and_near_only_between_the_threshold_and_the_limit(
    limit: int, before: int, hits: int, ratio: float, shadow: bool
) -> None:
    counts = account(limit, before, hits, ratio, shadow)
    after = before + hits
    assert counts.total == hits
    # within_limit takes the whole call or none of it; over_limit only the hits past the limit
    assert counts.within == (hits if after <= limit else 0)
    assert counts.over == max(0, after - max(before, limit))
    assert counts.shadow == (counts.over if shadow else 0)
    # near hits lie between the threshold and the limit
    assert 0 <= counts.near <= max(0, min(after, limit) - max(before, near_threshold(limit, ratio)))
