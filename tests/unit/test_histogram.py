"""mixerd.histogram: observations land in the bucket Prometheus's `le` says, published cumulative."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from mixerd.histogram import Histogram, Histograms


def test_a_value_on_a_bound_belongs_to_that_bound() -> None:
    h = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 1.0, 7.0):
        h.observe(value)
    assert h.counts == [2, 2, 1]
    assert h.cumulative() == [("0.1", 2), ("1.0", 4), ("+Inf", 5)]
    assert h.count == 5 and abs(h.sum - 8.65) < 1e-9


def test_published_histograms_parse_as_prometheus_histograms() -> None:
    histograms = Histograms((0.001, 0.01))
    histograms.of("mixer_check").observe(0.0005)
    histograms.of("mixer_check").observe(0.02)
    histograms.of("ext_authz").observe(0.005)

    class _One(Collector):
        def collect(self):  # type: ignore[no-untyped-def]
            yield histograms.family("t_seconds", "Test.", ["api"])

    registry = CollectorRegistry()
    registry.register(_One())
    (family,) = text_string_to_metric_families(generate_latest(registry).decode())
    assert family.type == "histogram"
    samples = {(s.name, s.labels.get("api"), s.labels.get("le")): s.value for s in family.samples}
    assert samples[("t_seconds_bucket", "mixer_check", "0.001")] == 1
    assert samples[("t_seconds_bucket", "mixer_check", "0.01")] == 1
    assert samples[("t_seconds_bucket", "mixer_check", "+Inf")] == 2
    assert samples[("t_seconds_count", "mixer_check", None)] == 2
    assert samples[("t_seconds_bucket", "ext_authz", "0.001")] == 0
    assert samples[("t_seconds_count", "ext_authz", None)] == 1
    assert abs(samples[("t_seconds_sum", "mixer_check", None)] - 0.0205) < 1e-9


def test_at_most_names_the_bucket_a_quantile_falls_in() -> None:
    h = Histogram((0.001, 0.01, 0.1))
    assert h.at_most(0.5) is None  # nothing observed
    for value in [0.0005] * 90 + [0.005] * 9 + [5.0]:
        h.observe(value)
    assert h.at_most(0.5) == 0.001 and h.at_most(0.9) == 0.001
    assert h.at_most(0.99) == 0.01
    assert h.at_most(1.0) is None  # the slowest is past the last bound
