"""The rate limit service's stats (mixer/server/envoy/ratelimit_stats.py): envoyproxy/ratelimit's
per-descriptor stats as Prometheus counters, with labels bounded whatever callers send."""

from __future__ import annotations

from mixerd.runtime.ratelimit import OK, OTHER_STAT, OVER_LIMIT, Decision, DescriptorVerdict
from mixerd.runtime.ratelimit_accounting import Hits
from mixerd.server.envoy.ratelimit_stats import (
    MAX_PER_VALUE_STATS,
    OTHER,
    RateLimitCollector,
    RateLimitStats,
)


def _one(stat: str, hits: Hits, rollup: str = "", code: int = OK) -> Decision:
    return Decision(code, (DescriptorVerdict(code, stat=stat, rollup=rollup or stat, hits=hits),))


def test_each_stat_gets_its_share_of_the_hits() -> None:
    stats = RateLimitStats()
    stats.record("edge", _one("remote_address", Hits(3, over=1, near=1)), "OVER_LIMIT")
    stats.record("edge", _one("remote_address", Hits(2, within=2, near=2)), "OK")
    stats.record("edge", _one("path_/x", Hits(4, over=4, shadow=4)), "OK")
    assert dict(stats.hits) == {
        ("edge", "remote_address", "total_hits"): 5,
        ("edge", "remote_address", "over_limit"): 1,
        ("edge", "remote_address", "near_limit"): 3,
        ("edge", "remote_address", "within_limit"): 2,
        ("edge", "path_/x", "total_hits"): 4,
        ("edge", "path_/x", "over_limit"): 4,
        ("edge", "path_/x", "shadow_mode"): 4,
    }
    assert stats.requests == {("edge", "OVER_LIMIT"): 1, ("edge", "OK"): 2}


def test_descriptors_with_no_limit_or_no_hits_count_nothing() -> None:
    stats = RateLimitStats()
    statuses = (
        DescriptorVerdict(),  # no limit
        DescriptorVerdict(remaining=2**32 - 1, unlimited=True),
        DescriptorVerdict(stat="user", rollup="user", hits=Hits()),  # hits 0: a look
    )
    stats.record("edge", Decision(OK, statuses), "OK")
    assert not stats.hits


def test_per_value_stats_keys_roll_up_past_their_cap() -> None:
    stats = RateLimitStats()
    for i in range(MAX_PER_VALUE_STATS + 5):
        stats.record("edge", _one(f"client_c{i}", Hits(1, within=1), rollup="client"), "OK")
    stats.record("edge", _one("client_c0", Hits(1, within=1), rollup="client"), "OK")  # already known
    stats.record("edge", _one("client_" + "x" * 2000, Hits(1, within=1), rollup="client"), "OK")  # too long
    totals = {stat: n for (_, stat, family), n in stats.hits.items() if family == "total_hits"}
    assert len(totals) == MAX_PER_VALUE_STATS + 1
    assert totals["client_c0"] == 2 and totals["client"] == 6
    # Envoy's limit overrides have no name without values: theirs roll up as (other).
    stats.record("edge", _one("user_ann", Hits(1, within=1), rollup=OTHER_STAT), "OK")
    assert stats.hits[("edge", OTHER_STAT, "total_hits")] == 1


def test_unknown_domains_are_labelled_up_to_a_hundred_and_never_long() -> None:
    stats = RateLimitStats()
    unknown = Decision(OK, (DescriptorVerdict(), DescriptorVerdict()), known=False)
    stats.record("d" * 2000, unknown, "OK")
    for i in range(120):
        stats.record(f"domain{i}", unknown, "OK")
    assert stats.not_found[OTHER] == 21 and len(stats.not_found) == 101
    assert stats.not_found_descriptors[OTHER] == 42  # envoyproxy/ratelimit counts each descriptor


def test_the_collector_exports_every_family_with_domain_and_descriptor() -> None:
    stats = RateLimitStats()
    stats.record("edge", _one("key_value.sub", Hits(1, over=1), code=OVER_LIMIT), "OVER_LIMIT")
    shadowed = Decision(OK, (DescriptorVerdict(OVER_LIMIT),), global_shadow=True)
    stats.record("edge", shadowed, "OK")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in RateLimitCollector(stats).collect()
        for s in family.samples
    }
    labels = (("descriptor", "key_value.sub"), ("domain", "edge"))
    assert samples[("mixerd_ratelimit_total_hits_total", labels)] == 1
    assert samples[("mixerd_ratelimit_over_limit_total", labels)] == 1
    assert samples[("mixerd_ratelimit_global_shadow_mode_total", (("domain", "edge"),))] == 1
