"""The rate limit service's stats: envoyproxy/ratelimit's, kept as counters for /metrics and statsd.

Per domain and descriptor stats key (`descriptor`: envoyproxy/ratelimit's key without the domain,
`<key>[_<value>].<key>[_<value>]...`, mixer/runtime/ratelimit_match.py), with the hits split as
envoyproxy/ratelimit splits them (mixer/runtime/ratelimit_accounting.py):

    mixerd_ratelimit_total_hits_total       ratelimit.service.rate_limit.<domain>.<descriptor>.total_hits
    mixerd_ratelimit_within_limit_total     ...within_limit: every hit of a call within the limit
    mixerd_ratelimit_near_limit_total       ...near_limit: the hits past the near-limit ratio
    mixerd_ratelimit_over_limit_total       ...over_limit: the hits past the limit (shadow mode too)
    mixerd_ratelimit_shadow_mode_total      ...shadow_mode: the hits past a shadow_mode limit

Per domain: `mixerd_ratelimit_requests_total{domain, code}` (OK, OVER_LIMIT, INVALID_ARGUMENT,
UNAVAILABLE, INTERNAL), `mixerd_ratelimit_domain_not_found_total{domain}`,
`mixerd_ratelimit_backend_errors_total{domain}` (limits the backend answered by its fail policy) and
`mixerd_ratelimit_global_shadow_mode_total{domain}` (answers the global shadow mode turned OK).

Labels stay bounded whatever callers send: domains no config has are labelled as sent up to 100 of
them, then `(other)`; stats keys with request values in them (detailed_metric, value_to_metric, Envoy's
limit overrides) up to 10 000, then the key without them (`(other)` for overrides). A label longer
than 1024 characters is always the other one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from ...runtime.ratelimit import Decision

MAX_UNKNOWN_DOMAINS = 100
MAX_PER_VALUE_STATS = 10_000
_MAX_LABEL_CHARS = 1024
OTHER = "(other)"

#: envoyproxy/ratelimit's per-descriptor stats, in its order, with what each counts.
HIT_FAMILIES = (
    ("total_hits", "Hits counted against a rate limit."),
    ("over_limit", "Hits past their rate limit (shadow mode ones too)."),
    ("near_limit", "Hits past the near-limit ratio of their rate limit."),
    ("within_limit", "Hits of calls within their rate limit."),
    ("shadow_mode", "Hits past a shadow_mode rate limit (answered OK)."),
)


class RateLimitStats:
    """Plain counters bumped on the event loop; read when /metrics is scraped or statsd is sent."""

    def __init__(self) -> None:
        self.hits: Counter[tuple[str, str, str]] = Counter()  # (domain, descriptor, family)
        self.requests: Counter[tuple[str, str]] = Counter()  # (domain, code)
        self.not_found: Counter[str] = Counter()  # requests
        self.not_found_descriptors: Counter[str] = Counter()  # what envoyproxy/ratelimit counts
        self.backend_errors: Counter[str] = Counter()  # limits
        self.backend_error_requests: Counter[str] = Counter()  # requests with such a limit
        self.global_shadow: Counter[str] = Counter()
        self._unknown: set[str] = set()
        self._per_value: set[str] = set()

    def record(self, domain: str, decision: Decision, code: str) -> None:
        if not decision.known:
            label = self._unknown_label(domain)
            self.not_found[label] += 1
            self.not_found_descriptors[label] += len(decision.statuses)
            self.requests[(label, code)] += 1
            return
        self.requests[(domain, code)] += 1
        if decision.backend_errors:
            self.backend_errors[domain] += decision.backend_errors
            self.backend_error_requests[domain] += 1
        if decision.global_shadow:
            self.global_shadow[domain] += 1
        hits = self.hits
        for status in decision.statuses:
            counts = status.hits
            if not counts.total:
                continue  # no limit, unlimited, or hits 0
            stat = status.stat
            if stat != status.rollup:
                stat = self._per_value_label(stat, status.rollup)
            hits[(domain, stat, "total_hits")] += counts.total
            if counts.over:
                hits[(domain, stat, "over_limit")] += counts.over
            if counts.near:
                hits[(domain, stat, "near_limit")] += counts.near
            if counts.within:
                hits[(domain, stat, "within_limit")] += counts.within
            if counts.shadow:
                hits[(domain, stat, "shadow_mode")] += counts.shadow

    def failed(self, domain: str, code: str, known: bool) -> None:
        """A request answered with a gRPC error (`code`: INVALID_ARGUMENT, UNAVAILABLE or INTERNAL)."""
        self.requests[(domain if known else self._unknown_label(domain), code)] += 1

    def _unknown_label(self, domain: str) -> str:
        return _bounded(domain, self._unknown, MAX_UNKNOWN_DOMAINS, OTHER)

    def _per_value_label(self, stat: str, rollup: str) -> str:
        return _bounded(stat, self._per_value, MAX_PER_VALUE_STATS, rollup)


def _bounded(label: str, seen: set[str], most: int, other: str) -> str:
    """`label` if it is one of the first `most` short enough to keep, else `other`."""
    if label in seen:
        return label
    if len(seen) < most and len(label) <= _MAX_LABEL_CHARS:
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
            for name, doc in HIT_FAMILIES
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
            "ShouldRateLimit requests for a domain no config has (answered OK).",
            s.not_found,
        )
        yield _by_domain(
            "mixerd_ratelimit_backend_errors",
            "Rate limits the backend could not count, answered by its handler's fail policy.",
            s.backend_errors,
        )
        yield _by_domain(
            "mixerd_ratelimit_global_shadow_mode",
            "OVER_LIMIT answers the global shadow mode (ratelimit_shadow_mode) turned into OK.",
            s.global_shadow,
        )


def _by_domain(name: str, doc: str, counts: Counter[str]) -> CounterMetricFamily:
    """A counter family labelled by domain alone."""
    family = CounterMetricFamily(name, doc, labels=["domain"])
    for domain, count in sorted(counts.items()):
        family.add_metric([domain], count)
    return family
