"""mixerd's own counters and request latencies, and the Prometheus collector that publishes them.

The request path bumps plain ints on `Stats` (the event loop is one thread, so no lock is needed);
`StatsCollector` reads them only when /metrics is scraped. prometheus_client's Counter.inc() would take
a lock on every request for no gain.

A Check's call status and its verdict are counted apart: a denial is an answered call (gRPC OK) whose
precondition says PERMISSION_DENIED, so `mixerd_check_requests_total{code}` counts calls by the call's
status and `mixerd_check_verdicts_total{code}` the answered ones by the verdict's. Every front-end times
its calls into `durations`, by API (`mixer_check`, `mixer_report`, `ext_authz`, `ratelimit`, and
`accesslog` per stream message): `mixerd_server_request_duration_seconds{api}`.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from ..histogram import Histograms

#: The `api` label of mixerd_server_request_duration_seconds, one per front-end method.
MIXER_CHECK_API, MIXER_REPORT_API, EXT_AUTHZ_API, RATELIMIT_API, ACCESSLOG_API = (
    "mixer_check",
    "mixer_report",
    "ext_authz",
    "ratelimit",
    "accesslog",
)

#: gRPC status names by number (0 OK .. 16 UNAUTHENTICATED; google.rpc codes use the same numbers), the
#: `code` label's values and the decision log's.
CODE_NAMES: tuple[str, ...] = tuple(
    c.name
    for c in sorted(grpc.StatusCode, key=lambda c: c.value[0])  # type: ignore[index]
)


class Stats:
    """Counters for one server; the `*_codes` and `check_verdicts` lists are indexed by gRPC status number."""

    __slots__ = (
        "check_codes",
        "check_verdicts",
        "decode_errors",
        "durations",
        "quota_requests",
        "quota_results",
        "report_bags",
        "report_codes",
    )

    def __init__(self) -> None:
        self.check_codes: list[int] = [0] * len(CODE_NAMES)  # by the call's status
        self.check_verdicts: list[int] = [0] * len(CODE_NAMES)  # answered calls, by the verdict's status
        self.report_codes: list[int] = [0] * len(CODE_NAMES)
        self.report_bags = 0
        self.quota_requests = 0
        self.quota_results = [0, 0, 0]  # quota results: granted in full, in part, nothing (QUOTA_RESULTS)
        self.decode_errors = 0
        self.durations = Histograms()  # seconds per call, by API


#: The `result` label of mixerd_quota_results_total, in the order of Stats.quota_results.
QUOTA_RESULTS = ("granted", "partial", "denied")


def quota_result(asked: int, granted: int) -> int:
    """The index in QUOTA_RESULTS of a quota answer granting `granted` of `asked`."""
    if granted >= asked:
        return 0
    return 1 if granted > 0 else 2


def count_code(counts: list[int], code: int) -> None:
    """Count status number `code` into `counts` (a status outside gRPC's 0..16 counts as UNKNOWN)."""
    counts[code if 0 <= code < len(counts) else 2] += 1


def by_code(name: str, documentation: str, counts: list[int]) -> CounterMetricFamily:
    """A counter family labelled `code` (gRPC status names) from counts indexed by status number."""
    family = CounterMetricFamily(name, documentation, labels=["code"])
    for number, count in enumerate(counts):
        # OK is always shown so dashboards have a series before the first request.
        if count or number == 0:
            family.add_metric([CODE_NAMES[number]], count)
    return family


class StatsCollector(Collector):
    """Publishes a `Stats` as Prometheus counters at scrape time."""

    def __init__(self, stats: Stats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self._stats
        yield by_code(
            "mixerd_check_requests",
            "Check calls answered, by the call's gRPC status (a denial is an OK call).",
            s.check_codes,
        )
        yield by_code(
            "mixerd_check_verdicts",
            "Check calls answered with a verdict, by the verdict's status (OK, PERMISSION_DENIED, ...).",
            s.check_verdicts,
        )
        yield by_code("mixerd_report_requests", "Report calls answered, by gRPC status.", s.report_codes)
        yield CounterMetricFamily(
            "mixerd_report_bags", "Attribute bags received in Report calls.", value=s.report_bags
        )
        yield CounterMetricFamily(
            "mixerd_quota_requests", "Quota allocations asked for in Check calls.", value=s.quota_requests
        )
        results = CounterMetricFamily(
            "mixerd_quota_results",
            "Quota results of Check calls: granted in full, in part (best effort) or nothing (denied).",
            labels=["result"],
        )
        for result, count in zip(QUOTA_RESULTS, s.quota_results, strict=True):
            results.add_metric([result], count)
        yield results
        yield CounterMetricFamily(
            "mixerd_decode_errors",
            "Requests or bags that could not be decoded (bad protobuf, undefined word index, duplicate).",
            value=s.decode_errors,
        )
        yield s.durations.family(
            "mixerd_server_request_duration_seconds",
            "Seconds from a call's arrival in mixerd to its answer, by API (accesslog: per stream message).",
            ["api"],
        )


def make_registry(stats: Stats) -> CollectorRegistry:
    """A registry of its own (not the global one) with `stats` and the process metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(stats))
    ProcessCollector(registry=registry)
    return registry
