"""The decision log's own counters on mixerd's /metrics (docs/decision-logs.md, "Metrics")."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .writer import DecisionWriter


class DecisionLogCollector(Collector):
    """Written, dropped and waiting decision records, read from the writer at scrape time."""

    def __init__(self, writer: DecisionWriter) -> None:
        self._writer = writer

    def collect(self) -> Iterator[Metric]:
        w = self._writer
        yield CounterMetricFamily(
            "mixerd_decision_log_written", "Decision records written to the decision log.", value=w.written
        )
        yield CounterMetricFamily(
            "mixerd_decision_log_dropped",
            "Decision records dropped because the decision log's queue was full.",
            value=w.dropped,
        )
        yield GaugeMetricFamily(
            "mixerd_decision_log_queued", "Decision records waiting to be written.", value=w.waiting
        )
