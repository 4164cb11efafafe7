"""mixerd's own counters, and the Prometheus collector that publishes them.

The request path bumps plain ints on `Stats` (the event loop is one thread, so no lock is needed);
`StatsCollector` reads them only when /metrics is scraped. prometheus_client's Counter.inc() would take
a lock on every request for no gain.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

#: gRPC status names by number (0 OK .. 16 UNAUTHENTICATED), the `code` label's values.
_CODE_NAMES: tuple[str, ...] = tuple(
    c.name
    for c in sorted(grpc.StatusCode, key=lambda c: c.value[0])  # type: ignore[index]
)


class Stats:
    """Counters for one server; lists are indexed by gRPC status number."""

    __slots__ = ("check_codes", "decode_errors", "quota_requests", "report_bags", "report_codes")

    def __init__(self) -> None:
        self.check_codes: list[int] = [0] * len(_CODE_NAMES)
        self.report_codes: list[int] = [0] * len(_CODE_NAMES)
        self.report_bags = 0
        self.quota_requests = 0
        self.decode_errors = 0


def _by_code(name: str, documentation: str, counts: list[int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=["code"])
    for number, count in enumerate(counts):
        # OK is always shown so dashboards have a series before the first request.
        if count or number == 0:
            family.add_metric([_CODE_NAMES[number]], count)
    return family


class StatsCollector(Collector):
    """Publishes a `Stats` as Prometheus counters at scrape time."""

    def __init__(self, stats: Stats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self._stats
        yield _by_code("mixerd_check_requests", "Check calls answered, by gRPC status.", s.check_codes)
        yield _by_code("mixerd_report_requests", "Report calls answered, by gRPC status.", s.report_codes)
        yield CounterMetricFamily(
            "mixerd_report_bags", "Attribute bags received in Report calls.", value=s.report_bags
        )
        yield CounterMetricFamily(
            "mixerd_quota_requests", "Quota allocations asked for in Check calls.", value=s.quota_requests
        )
        yield CounterMetricFamily(
            "mixerd_decode_errors",
            "Requests or bags that could not be decoded (bad protobuf, undefined word index, duplicate).",
            value=s.decode_errors,
        )


def make_registry(stats: Stats) -> CollectorRegistry:
    """A registry of its own (not the global one) with `stats` and the process metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(stats))
    ProcessCollector(registry=registry)
    return registry
