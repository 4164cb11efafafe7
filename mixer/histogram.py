"""Latency histograms bumped on the request path and published at scrape time.

prometheus_client's Histogram takes a lock per observation; mixerd observes on the event loop (one
thread), so a histogram here is a list of plain ints and a float, and `HistogramMetricFamily` turns it
into Prometheus's cumulative buckets only when /metrics is read. A scrape from the monitoring thread may
read counts an observation is half-way through: off by one observation at most, never out of order
(the cumulative counts are made from one copy of the list).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Hashable, Iterator, Sequence

from prometheus_client.core import HistogramMetricFamily

#: Seconds, from a cached answer (tens of microseconds) to a call past any proxy's deadline.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Histogram:
    """Observations counted into buckets with upper bounds `bounds` (and +Inf), with their sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bound's bucket (Prometheus's `le`).
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def at_most(self, quantile: float) -> float | None:
        """The upper bound of the bucket the `quantile` (0..1) of observations falls in: that share of
        them took at most this long. None when it is past the last bound, or nothing was observed."""
        counts = list(self.counts)
        total = sum(counts)
        if not total:
            return None
        wanted, seen = quantile * total, 0
        for bound, count in zip(self.bounds, counts, strict=False):
            seen += count
            if seen >= wanted:
                return bound
        return None

    def cumulative(self) -> list[tuple[str, float]]:
        """(le, observations at or below it) for each bound and +Inf, as Prometheus publishes them."""
        out: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip((*map(_le, self.bounds), "+Inf"), list(self.counts), strict=True):
            total += count
            out.append((bound, total))
        return out


class Histograms:
    """Histograms by label values, made on first use."""

    __slots__ = ("_bounds", "by_labels")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self._bounds = tuple(bounds)
        self.by_labels: dict[Hashable, Histogram] = {}

    def of(self, labels: Hashable) -> Histogram:
        """The histogram of `labels` (a label value, or a tuple of them)."""
        histogram = self.by_labels.get(labels)
        if histogram is None:
            histogram = self.by_labels[labels] = Histogram(self._bounds)
        return histogram

    def family(self, name: str, documentation: str, labels: Sequence[str]) -> HistogramMetricFamily:
        """Every histogram as one Prometheus family; each key is a label value or a tuple of them."""
        family = HistogramMetricFamily(name, documentation, labels=list(labels))
        for key, histogram in sorted(self._items(), key=lambda item: item[0]):
            buckets = histogram.cumulative()
            family.add_metric(list(key), buckets, sum_value=histogram.sum)
        return family

    def _items(self) -> Iterator[tuple[tuple[str, ...], Histogram]]:
        for key, histogram in list(self.by_labels.items()):
            yield (key if isinstance(key, tuple) else (str(key),)), histogram


def _le(bound: float) -> str:
    """A bound as Prometheus writes `le` (0.0001, 1.0, 10.0)."""
    return repr(float(bound))
