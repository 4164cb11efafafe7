"""What a valid config compiles to: routing of legacy kinds and cross-namespace references, handler keys,
attribute bindings, and problem order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from mixerd.adapter import AdapterInfo
from mixerd.config import ConfigRejected, compile_snapshot, load_snapshot
from mixerd.config.bindings import rewrite_outputs
from mixerd.config.loader import Document
from mixerd.plugins import load_adapters
from mixerd.templates import TEMPLATES

DATA = Path(__file__).resolve().parents[2] / "data" / "config"
ADAPTERS = load_adapters()


def _routes(folder: Path) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    snapshot = load_snapshot(folder, ADAPTERS)
    return {r.fqn: [(a.handler, a.instances) for a in r.actions] for r in snapshot.rules}


def test_legacy_kinds_are_handlers_and_instances_and_are_routed() -> None:
    snapshot = load_snapshot(DATA / "good" / "legacy_kinds", ADAPTERS)
    assert _routes(DATA / "good" / "legacy_kinds") == {
        "deny-blocked.rule.istio-system": [
            ("deny.denier.istio-system", ("nothing.checknothing.istio-system",)),
            ("allowed.listchecker.istio-system", ("user.listentry.istio-system",)),
        ]
    }
    deny = snapshot.handlers["deny.denier.istio-system"]
    assert deny.adapter.name == "denier"
    assert (deny.params.status.code, deny.params.status.message) == (7, "not allowed")
    assert {fqn: i.template for fqn, i in deny.instances.items()} == {
        "nothing.checknothing.istio-system": "checknothing"
    }
    assert snapshot.instances["user.listentry.istio-system"].template.name == "listentry"


def test_cross_namespace_references() -> None:
    assert _routes(DATA / "good" / "cross_namespace") == {
        "log-bookinfo.rule.istio-system": [("log.handler.istio-system", ("accesslog.instance.bookinfo",))],
        "deny-blocked.rule.bookinfo": [
            ("deny.handler.istio-system", ("nothing.instance.bookinfo", "nothing.instance.istio-system"))
        ],
    }


def test_both_spellings_give_the_same_config() -> None:
    snapshot = load_snapshot(DATA / "good" / "snake_and_camel", ADAPTERS)
    quota = snapshot.handlers["quota.handler.istio-system"].params.quotas[0]
    assert (quota.max_amount, quota.overrides[0].max_amount) == (100, 1000)
    deny = snapshot.handlers["deny.handler.istio-system"].params
    assert (deny.valid_duration, deny.valid_use_count) == (10_000_000_000, 5)
    assert snapshot.manifest["custom.weight"].name == "DOUBLE"
    rules = {r.fqn: r for r in snapshot.rules}
    ops = rules["quota.rule.istio-system"].request_header_operations
    assert [(op.name, [v.text for v in op.values], op.operation) for op in ops] == [
        ("x-quota", ['"checked"'], 0),
        ("x-remove-me", [], 1),
    ]
    assert rules["quota.rule.istio-system"].actions[0].name == "q"
    response = rules["deny-tenant.rule.istio-system"].response_header_operations
    assert [(op.name, op.operation) for op in response] == [("x-tenant", 2)]
    logs = [
        snapshot.instances[f"{n}.instance.istio-system"].info.types for n in ("accesslog", "accesslog-snake")
    ]
    assert [sorted(t) for t in logs] == [
        ["monitored_resource_dimensions", "monitored_resource_type", "severity", "timestamp"],
        ["monitored_resource_dimensions", "monitored_resource_type", "severity"],
    ]


def test_bindings_name_the_template_outputs() -> None:
    snapshot = load_snapshot(DATA / "good" / "snake_and_camel", ADAPTERS)
    bindings = dict(snapshot.instances["attributes.instance.istio-system"].bindings)
    assert {name: b.text for name, b in bindings.items()} == {
        "source.labels": "adapter_template_kubernetes.output.source_labels | emptyStringMap()",
        "source.ip": 'adapter_template_kubernetes.output.source_pod_ip | ip("0.0.0.0")',
    }


def test_output_references_are_rewritten_outside_string_literals_only() -> None:
    kubernetes = TEMPLATES["kubernetes"]
    text = '$out.source_pod_name | output.source_owner | "$out.x" | `output.y` | x.output.z | $out.nope'
    assert rewrite_outputs(text, kubernetes) == (
        "adapter_template_kubernetes.output.source_pod_name | adapter_template_kubernetes.output.source_owner"
        ' | "$out.x" | `output.y` | x.output.z | adapter_template_kubernetes.output.nope',
        ["$out.nope"],
    )


def test_handler_keys_change_with_params_and_instances_only(tmp_path: Path) -> None:
    config = (DATA / "good" / "cross_namespace" / "istio-system.yaml").read_text()
    (tmp_path / "a.yaml").write_text(config)
    (tmp_path / "b.yaml").write_text((DATA / "good" / "cross_namespace" / "bookinfo.yaml").read_text())
    first = load_snapshot(tmp_path, ADAPTERS).handlers
    (tmp_path / "a.yaml").write_text(
        config.replace("compiledAdapter: denier", "compiledAdapter: denier\n  params: {}")
    )
    same = load_snapshot(tmp_path, ADAPTERS).handlers
    assert {f: h.key for f, h in first.items()} == {f: h.key for f, h in same.items()}
    (tmp_path / "a.yaml").write_text(
        config.replace("compiledAdapter: denier", "compiledAdapter: denier\n  params: {validUseCount: 1}")
    )
    changed = load_snapshot(tmp_path, ADAPTERS).handlers
    assert changed["deny.handler.istio-system"].key != first["deny.handler.istio-system"].key
    assert changed["log.handler.istio-system"].key == first["log.handler.istio-system"].key


def _doc(file: str, number: int, kind: str, name: str, spec: dict) -> Document:
    data = {"apiVersion": "config.istio.io/v1alpha2", "kind": kind, "metadata": {"name": name}, "spec": spec}
    return Document(file, number, data)


def test_problems_come_sorted_by_file_and_document() -> None:
    documents = [
        _doc("b.yaml", 2, "rule", "r", {"match": "1"}),
        _doc("a.yaml", 1, "handler", "h", {"compiledAdapter": "nope"}),
        _doc("b.yaml", 1, "instance", "i", {"compiledTemplate": "nope"}),
    ]
    with pytest.raises(ConfigRejected) as e:
        compile_snapshot(documents, ADAPTERS)
    assert [(x.file, x.document, x.path) for x in e.value.errors] == [
        ("a.yaml", 1, ".spec.compiledAdapter"),
        ("b.yaml", 1, ".spec.compiledTemplate"),
        ("b.yaml", 2, ".spec.match"),
        ("b.yaml", 2, ".spec.actions"),
    ]


@dataclass
class _NoParams:
    pass


def test_a_failing_adapter_validate_is_a_config_problem_not_a_crash() -> None:
    def validate(params: object, instances: object) -> list:
        raise RuntimeError("bug")

    adapters = {
        "buggy": AdapterInfo("buggy", ("checknothing",), _NoParams, build=lambda env: None, validate=validate)
    }
    documents = [
        _doc("a.yaml", 1, "handler", "h", {"compiledAdapter": "buggy"}),
        _doc("a.yaml", 2, "instance", "i", {"compiledTemplate": "checknothing"}),
        _doc("a.yaml", 3, "rule", "r", {"actions": [{"handler": "h", "instances": ["i"]}]}),
    ]
    with pytest.raises(ConfigRejected) as e:
        compile_snapshot(documents, adapters)
    assert [str(x) for x in e.value.errors] == [
        "a.yaml: handler 'h.handler.istio-system' .spec.params: "
        "adapter buggy validate failed: RuntimeError: bug"
    ]
