"""Attribute generators run before Check and Report and merge their output *under* the request's own
attributes (MIXER.md 6.3): what the proxy sent wins, generated values fill gaps, reading a generated value
records no reference, and the generator's inputs are recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mixerd.adapter import AdapterInfo, Env
from mixerd.attribute import AttributeBag, Condition, Reference
from mixerd.dispatch import DispatchError
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime, RuntimeDispatcher
from mixerd.templates import KubernetesInstance

CONFIG = """
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: gen}
spec: {compiledAdapter: fakegen}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: attributes}
spec:
  compiledTemplate: kubernetes
  params:
    source_uid: source.uid | ""
  attributeBindings:
    source.labels: $out.source_labels | emptyStringMap()
    source.workload.name: $out.source_workload_name | "unknown"
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: generate}
spec:
  actions: [{handler: gen, instances: [attributes]}]
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: deny}
spec:
  compiledAdapter: denier
  params: {status: {code: 7, message: app x is not allowed}}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: nothing}
spec: {compiledTemplate: checknothing}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: deny-app-x}
spec:
  match: source.labels["app"] == "x"
  actions: [{handler: deny, instances: [nothing]}]
"""


@dataclass
class _Params:
    pass


class _Generator:
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.seen: list[str] = []

    def handle_kubernetes(self, instance: KubernetesInstance) -> Mapping[str, Any]:
        self.seen.append(instance.source_uid)
        if self.fail:
            raise RuntimeError("pod lookup failed")
        if instance.source_uid != "kubernetes://a.default":
            return {}
        return {"source_labels": {"app": "x"}, "source_workload_name": "a-workload"}


def _run(tmp_path: Path, bags: list[dict[str, Any]], fail: bool = False) -> tuple[list[Any], _Generator]:
    (tmp_path / "config.yaml").write_text(CONFIG)
    generator = _Generator(fail)

    def build(env: Env) -> _Generator:
        return generator

    info = AdapterInfo("fakegen", ("kubernetes",), _Params, build)

    async def go() -> list[Any]:
        runtime = Runtime({**load_adapters(), "fakegen": info}, folder=tmp_path)
        await runtime.apply(runtime.compile())
        dispatcher = RuntimeDispatcher(runtime, runtime.stats)
        out = []
        for values in bags:
            bag = AttributeBag(values)
            try:
                outcome = await dispatcher.check(bag, {}, "", None)
            except DispatchError as e:
                out.append(e)
                continue
            out.append((outcome, bag))
        await runtime.close()
        return out

    return asyncio.run(go()), generator


def test_generated_attributes_drive_the_check_and_only_inputs_are_referenced(tmp_path: Path) -> None:
    [(outcome, bag)], generator = _run(tmp_path, [{"source.uid": "kubernetes://a.default"}])
    assert (outcome.status_code, outcome.message) == (7, "deny.handler.istio-system:app x is not allowed")
    assert generator.seen == ["kubernetes://a.default"]
    # The generator's input is part of the cache key; the generated labels are not (the proxy never sent
    # them, so it could never match them).
    assert bag.references() == [
        Reference("source.uid", Condition.EXACT),
    ]
    assert bag.peek("source.workload.name") == "a-workload"


def test_what_the_proxy_sent_wins_over_generated_values(tmp_path: Path) -> None:
    values = {"source.uid": "kubernetes://a.default", "source.labels": {"app": "y"}}
    [(outcome, bag)], _ = _run(tmp_path, [values])
    assert outcome.status_code == 0
    assert Reference("source.labels", Condition.EXACT, "app") in bag.references()


def test_a_generator_that_produces_nothing_leaves_the_fallbacks(tmp_path: Path) -> None:
    [(outcome, bag)], _ = _run(tmp_path, [{"source.uid": "kubernetes://b.default"}])
    assert outcome.status_code == 0
    assert bag.peek("source.workload.name") == "unknown"
    assert bag.peek("source.labels") == {}


def test_a_failing_generator_fails_the_check(tmp_path: Path) -> None:
    [error], _ = _run(tmp_path, [{"source.uid": "kubernetes://a.default"}], fail=True)
    assert isinstance(error, DispatchError)
    assert str(error) == "preprocessing attributes failed: gen.handler.istio-system: pod lookup failed"


@pytest.mark.parametrize("uid", ["kubernetes://a.default"])
def test_generation_also_runs_before_report(tmp_path: Path, uid: str) -> None:
    (tmp_path / "config.yaml").write_text(CONFIG)
    generator = _Generator(False)
    info = AdapterInfo("fakegen", ("kubernetes",), _Params, lambda env: generator)

    async def go() -> None:
        runtime = Runtime({**load_adapters(), "fakegen": info}, folder=tmp_path)
        await runtime.apply(runtime.compile())
        bags = [AttributeBag({"source.uid": uid}), AttributeBag({})]
        await RuntimeDispatcher(runtime, runtime.stats).report(bags)
        assert [b.peek("source.workload.name") for b in bags] == ["a-workload", "unknown"]
        await runtime.close()

    asyncio.run(go())
    assert generator.seen == [uid, ""]
