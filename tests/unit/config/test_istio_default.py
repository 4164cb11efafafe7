"""Istio 1.4's default telemetry config (as its Helm chart renders it) loads.

Its handlers need the prometheus and kubernetesenv adapters. With a stub registry that declares both
with permissive params, everything else in it (manifests, instances, bindings, rules) must compile.
With the installed adapters, the only problems are the adapters that are not installed yet: issue 5
brings them, and then the second test expects a valid config with no change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mixerd.adapter import AdapterInfo
from mixerd.cli import main
from mixerd.config import load_snapshot
from mixerd.plugins import load_adapters

FOLDER = Path(__file__).resolve().parents[2] / "data" / "config" / "istio"
FILE = "istio-default-telemetry-config.rendered.yaml"


@dataclass
class _PrometheusParams:
    metrics: Any = None
    metrics_expiration_policy: Any = None


@dataclass
class _KubernetesEnvParams:
    kubeconfig_path: Any = None
    cache_refresh_duration: Any = None


def _stub_adapters() -> dict[str, AdapterInfo]:
    adapters = dict(load_adapters())
    for name, template, params in (
        ("prometheus", "metric", _PrometheusParams),
        ("kubernetesenv", "kubernetes", _KubernetesEnvParams),
    ):
        adapters.setdefault(name, AdapterInfo(name, (template,), params, build=lambda env: None))
    return adapters


def test_everything_but_the_missing_adapters_compiles() -> None:
    snapshot = load_snapshot(FOLDER, _stub_adapters())
    assert dict(snapshot.resources_by_kind) == {
        "attributemanifest": 2,
        "handler": 2,
        "instance": 9,
        "rule": 6,
    }
    assert sorted(snapshot.handlers) == [
        "kubernetesenv.handler.istio-system",
        "prometheus.handler.istio-system",
    ]
    prometheus = snapshot.handlers["prometheus.handler.istio-system"]
    assert sorted(prometheus.instances) == [
        f"{name}.instance.istio-system"
        for name in (
            "requestcount",
            "requestduration",
            "requestsize",
            "responsesize",
            "tcpbytereceived",
            "tcpbytesent",
            "tcpconnectionsclosed",
            "tcpconnectionsopened",
        )
    ]
    attributes = snapshot.instances["attributes.instance.istio-system"]
    assert len(attributes.bindings) == 21
    assert {r.fqn.split(".")[0]: r.match.text for r in snapshot.rules}[
        "promtcp"
    ] == 'context.protocol == "tcp"'


def test_with_the_installed_adapters_only_the_missing_ones_are_problems(
    capsys: pytest.CaptureFixture[str],
) -> None:
    installed = load_adapters()
    names = ", ".join(installed)
    expected = [
        f"{FILE}: handler '{name}.handler.istio-system' .spec.compiledAdapter: unknown adapter {name!r} "
        f"(installed: {names})"
        for name in ("prometheus", "kubernetesenv")
        if name not in installed
    ]
    code = main(["check-config", str(FOLDER)])
    out = capsys.readouterr().out
    if expected:  # today: prometheus and kubernetesenv do not exist yet
        assert (code, out.splitlines()) == (1, expected)
    else:
        assert (code, out) == (
            0,
            "valid: 6 rules, 9 instances, 2 handlers in use, 2 attribute manifests; "
            "resources by kind: attributemanifest 2, handler 2, instance 9, rule 6\n",
        )
