"""The ext_authz front-end's self metrics, published on mixerd's /metrics at scrape time.

- `mixerd_authz_requests_total{outcome}`: Check calls by answer: `allowed` (OK), `denied` (a deny
  verdict), `error` (a gRPC error status: an adapter failed or timed out, or mixerd failed), `invalid`
  (INVALID_ARGUMENT: the request could not be read);
- `mixerd_authz_verdicts_total{code}`: the allowed and denied ones by the verdict's status (OK,
  PERMISSION_DENIED, UNAUTHENTICATED, ...), from the cache or the rules;
- `mixerd_authz_cache_hits_total`, `mixerd_authz_cache_misses_total`: Checks the verdict cache answered,
  and those it could not (dispatched to the rules);
- `mixerd_authz_cache_evictions_total{reason}`: verdicts dropped: `size` (to stay within
  authz_cache_size and authz_cache_bytes), `expired` (past their valid duration), `used_up` (out of
  uses), `reload` (the config changed);
- `mixerd_authz_cache_too_large_total`: verdicts answered but not cached, their entry being over 1/64
  of authz_cache_bytes;
- `mixerd_authz_cache_entries`, `mixerd_authz_cache_bytes`: verdicts held now, and the bytes they hold
  (gauges).

The cache metrics are published only while the cache is on (authz_cache_size and authz_cache_bytes
above 0).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..stats import CODE_NAMES, by_code, count_code
from .verdict_cache import EVICTION_REASONS, VerdictCache

ALLOWED, DENIED, ERROR, INVALID = "allowed", "denied", "error", "invalid"
OUTCOMES = (ALLOWED, DENIED, ERROR, INVALID)


class AuthzStats:
    """Request counts by outcome, and verdicts by status; plain ints bumped on the event loop (see
    mixerd.server.stats)."""

    __slots__ = ("error", "invalid", "verdicts")

    def __init__(self) -> None:
        self.error = 0
        self.invalid = 0
        self.verdicts = [0] * len(CODE_NAMES)  # answered Checks, by their verdict's status number

    def verdict(self, code: int) -> None:
        """Count an answered Check whose verdict has status `code`."""
        count_code(self.verdicts, code)

    @property
    def allowed(self) -> int:
        return self.verdicts[0]

    @property
    def denied(self) -> int:
        return sum(self.verdicts) - self.verdicts[0]


class AuthzCollector(Collector):
    def __init__(self, stats: AuthzStats, cache: VerdictCache | None) -> None:
        self._stats = stats
        self._cache = cache

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "mixerd_authz_requests", "ext_authz Check calls answered, by outcome.", labels=["outcome"]
        )
        for outcome in OUTCOMES:
            requests.add_metric([outcome], getattr(self._stats, outcome))
        yield requests
        yield by_code(
            "mixerd_authz_verdicts",
            "ext_authz Checks answered with a verdict, by the verdict's status (OK, PERMISSION_DENIED, ...).",
            self._stats.verdicts,
        )
        cache = self._cache
        if cache is None:
            return
        yield CounterMetricFamily(
            "mixerd_authz_cache_hits", "ext_authz Checks answered from the verdict cache.", value=cache.hits
        )
        yield CounterMetricFamily(
            "mixerd_authz_cache_misses",
            "ext_authz Checks the verdict cache could not answer.",
            value=cache.misses,
        )
        evictions = CounterMetricFamily(
            "mixerd_authz_cache_evictions",
            "Verdicts dropped from the ext_authz cache, by reason.",
            labels=["reason"],
        )
        for reason in EVICTION_REASONS:
            evictions.add_metric([reason], cache.evictions[reason])
        yield evictions
        yield CounterMetricFamily(
            "mixerd_authz_cache_too_large",
            "ext_authz verdicts not cached because their entry was over 1/64 of the cache's byte budget.",
            value=cache.too_large,
        )
        yield GaugeMetricFamily(
            "mixerd_authz_cache_entries", "Verdicts in the ext_authz cache now.", value=len(cache)
        )
        yield GaugeMetricFamily(
            "mixerd_authz_cache_bytes", "Bytes the ext_authz cache's entries hold now.", value=cache.bytes
        )
