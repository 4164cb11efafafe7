"""The rate limit service's self metrics, per domain (envoyproxy/ratelimit's stats, as Prometheus counters).

Per domain and config descriptor (`descriptor` is the descriptor's path in the config: `key` or
`key_value`, nested ones joined by `.`; `override:<keys>` for a limit Envoy sent):

    mixerd_ratelimit_total_hits_total       hits counted against a limit
    mixerd_ratelimit_within_limit_total     hits within it (and not near it)
    mixerd_ratelimit_near_limit_total       hits within it, past 80% of it
    mixerd_ratelimit_over_limit_total       hits over it (shadow mode ones too)
    mixerd_ratelimit_shadow_mode_total      hits over a shadow_mode limit (answered OK)

Per domain: `mixerd_ratelimit_requests_total{domain, code}` (OK, OVER_LIMIT, INVALID_ARGUMENT,
UNAVAILABLE, INTERNAL), `mixerd_ratelimit_domain_not_found_total{domain}` and
`mixerd_ratelimit_backend_errors_total{domain}` (limits the backend answered by its fail policy).
Domains no config has are labelled as sent, up to 100 of them, then `(other)`: a misconfigured proxy
must not blow up the metrics. Likewise the `override:<keys>` descriptors (their keys are the caller's):
100 of them, then `override:(other)`. A label sent longer than 256 characters is always the other one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from ...runtime.ratelimit import NEAR, OVER, SHADOW, WITHIN, Decision

_MAX_UNKNOWN = 100
_MAX_LABEL_CHARS = 256
OTHER = "(other)"
OTHER_OVERRIDE = "override:(other)"

_HIT_FAMILIES = (
    ("total_hits", "Hits counted against a rate limit."),
    ("within_limit", "Hits within their rate limit (and not near it)."),
    ("near_limit", "Hits within their rate limit, past 80% of it."),
    ("over_limit", "Hits over their rate limit (shadow mode ones too)."),
    ("shadow_mode", "Hits over a shadow_mode rate limit (answered OK)."),
)
#: The families (besides total_hits) a descriptor's hits count in, by its outcome.
_BY_OUTCOME = {
    WITHIN: ("within_limit",),
    NEAR: ("near_limit",),
    OVER: ("over_limit",),
    SHADOW: ("over_limit", "shadow_mode"),
}


class RateLimitStats:
    """Plain counters bumped on the event loop; read when /metrics is scraped."""

    def __init__(self) -> None:
        self.hits: Counter[tuple[str, str, str]] = Counter()  # (domain, descriptor, family)
        self.requests: Counter[tuple[str, str]] = Counter()  # (domain, code)
        self.not_found: Counter[str] = Counter()
        self.backend_errors: Counter[str] = Counter()
        self._unknown: set[str] = set()
        self._overrides: set[str] = set()

    def record(self, domain: str, decision: Decision, code: str) -> None:
        if not decision.known:
            label = self._unknown_label(domain)
            self.not_found[label] += 1
            self.requests[(label, code)] += 1
            return
        self.requests[(domain, code)] += 1
        if decision.backend_errors:
            self.backend_errors[domain] += decision.backend_errors
        hits = self.hits
        for status in decision.statuses:
            families = _BY_OUTCOME.get(status.outcome)
            if families is None:
                continue  # no limit, or unlimited
            stat = status.stat
            if stat.startswith("override:"):
                stat = _bounded(stat, self._overrides, OTHER_OVERRIDE)
            hits[(domain, stat, "total_hits")] += status.hits
            for family in families:
                hits[(domain, stat, family)] += status.hits

    def failed(self, domain: str, code: str, known: bool) -> None:
        """A request answered with a gRPC error (`code`: INVALID_ARGUMENT or UNAVAILABLE)."""
        self.requests[(domain if known else self._unknown_label(domain), code)] += 1

    def _unknown_label(self, domain: str) -> str:
        return _bounded(domain, self._unknown, OTHER)


def _bounded(label: str, seen: set[str], other: str) -> str:
    """`label` if it is one of the first _MAX_UNKNOWN short enough to keep, else `other`."""
    if label in seen:
        return label
    if len(seen) < _MAX_UNKNOWN and len(label) <= _MAX_LABEL_CHARS:
        seen.add(label)
        return label
    return other


class RateLimitCollector(Collector):
    def __init__(self, stats: RateLimitStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self._stats
        families = {
            name: CounterMetricFamily(f"mixerd_ratelimit_{name}", doc, labels=["domain", "descriptor"])
            for name, doc in _HIT_FAMILIES
        }
        for (domain, descriptor, family), count in sorted(s.hits.items()):
            families[family].add_metric([domain, descriptor], count)
        yield from families.values()
        requests = CounterMetricFamily(
            "mixerd_ratelimit_requests",
            "ShouldRateLimit requests, by domain and answer (OK, OVER_LIMIT, or the gRPC error).",
            labels=["domain", "code"],
        )
        for (domain, code), count in sorted(s.requests.items()):
            requests.add_metric([domain, code], count)
        yield requests
        yield _by_domain(
            "mixerd_ratelimit_domain_not_found",
            "ShouldRateLimit requests for a domain no ratelimitconfig has (answered OK).",
            s.not_found,
        )
        yield _by_domain(
            "mixerd_ratelimit_backend_errors",
            "Rate limits the backend could not count, answered by its handler's fail policy.",
            s.backend_errors,
        )


def _by_domain(name: str, doc: str, counts: Counter[str]) -> CounterMetricFamily:
    """A counter family labelled by domain alone."""
    family = CounterMetricFamily(name, doc, labels=["domain"])
    for domain, count in sorted(counts.items()):
        family.add_metric([domain], count)
    return family
