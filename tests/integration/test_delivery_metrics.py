"""Telemetry handlers' delivery counters are published on the monitoring port, per handler (issue 5.6)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mixerd.adapter import AdapterInfo, Env
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime
from mixerd.testing_scenarios.server import run_mixer

CONFIG = """
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: sink}
spec: {compiledAdapter: countingsink}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: nothing}
spec: {compiledTemplate: reportnothing}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: everything}
spec:
  actions: [{handler: sink, instances: [nothing]}]
"""


@dataclass
class _Params:
    pass


class _Sink:
    def __init__(self) -> None:
        self.counts = {"queued": 7, "sent": 5, "dropped": 2, "failed": 1}

    def handle_reportnothing(self, instances: list[object]) -> None:
        self.counts["queued"] += len(instances)

    def delivery_stats(self) -> dict[str, int]:
        return dict(self.counts)

    def span_counts(self) -> dict[str, int]:
        return {"untraced": 4, "sampled_out": 3, "invalid": 2}


def test_delivery_counters_are_on_the_monitoring_port(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(CONFIG)
    sink = _Sink()

    def build(env: Env) -> _Sink:
        return sink

    adapters = {
        **load_adapters(),
        "countingsink": AdapterInfo("countingsink", ("reportnothing",), _Params, build),
    }
    with run_mixer(Runtime(adapters, folder=tmp_path)) as mixer:
        labels = '{adapter="countingsink",handler="sink.handler.istio-system"}'
        for key, value in sink.counts.items():
            assert mixer.metric(f"mixerd_adapter_delivery_{key}_total{labels}") == value
        spans = {k: mixer.metric(f"mixerd_adapter_spans_{k}_total{labels}") for k in ("untraced", "invalid")}
        assert spans == {"untraced": 4, "invalid": 2}
        # Handlers without delivery counters (denier, ...) publish none: only this handler appears.
        text = mixer.metrics_text()
        assert text.count("mixerd_adapter_delivery_sent_total{") == 1


GENERATOR_CONFIG = """
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: gen}
spec: {compiledAdapter: countinggen}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: attributes}
spec:
  compiledTemplate: kubernetes
  params: {source_uid: source.uid | ""}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: generate}
spec:
  actions: [{handler: gen, instances: [attributes]}]
"""


class _Generator:
    def handle_kubernetes(self, instance: object) -> dict[str, object]:
        return {}

    def generation_stats(self) -> dict[str, int]:
        return {"hits": 3, "misses": 2, "skipped": 1, "sync_failures": 0}


def test_generation_counters_are_on_the_monitoring_port(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(GENERATOR_CONFIG)
    info = AdapterInfo("countinggen", ("kubernetes",), _Params, lambda env: _Generator())
    with run_mixer(Runtime({**load_adapters(), "countinggen": info}, folder=tmp_path)) as mixer:
        labels = '{adapter="countinggen",handler="gen.handler.istio-system"}'
        got = {
            k: mixer.metric(f"mixerd_adapter_generation_{k}_total{labels}")
            for k in ("hits", "misses", "skipped")
        }
        assert got == {"hits": 3, "misses": 2, "skipped": 1}
