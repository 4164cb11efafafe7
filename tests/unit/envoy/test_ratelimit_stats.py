"""The rate limit service's self metrics keep a bounded set of labels whatever callers send."""

from __future__ import annotations

from mixerd.runtime.ratelimit import OK, WITHIN, Decision, DescriptorVerdict
from mixerd.server.envoy.ratelimit_stats import OTHER, OTHER_OVERRIDE, RateLimitStats


def _override(keys: str) -> Decision:
    return Decision(OK, (DescriptorVerdict(outcome=WITHIN, stat=f"override:{keys}", hits=1),))


def test_override_descriptors_are_labelled_by_their_keys_up_to_a_hundred() -> None:
    stats = RateLimitStats()
    for i in range(150):
        stats.record("edge", _override(f"user{i}"), "OK")
    stats.record("edge", _override("user0"), "OK")
    stats.record("edge", _override("k" * 300), "OK")  # too long to be a label
    labels = {stat for _, stat, family in stats.hits if family == "total_hits"}
    assert len(labels) == 101 and OTHER_OVERRIDE in labels
    assert stats.hits[("edge", "override:user0", "total_hits")] == 2
    assert stats.hits[("edge", OTHER_OVERRIDE, "total_hits")] == 51


def test_unknown_domains_are_labelled_up_to_a_hundred_and_never_long() -> None:
    stats = RateLimitStats()
    unknown = Decision(OK, (), known=False)
    stats.record("d" * 300, unknown, "OK")
    for i in range(120):
        stats.record(f"domain{i}", unknown, "OK")
    assert stats.not_found[OTHER] == 21 and len(stats.not_found) == 101
