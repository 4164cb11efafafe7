"""Kubernetes list documents: a `kubectl get ... -o yaml` export loads like the folder it came from.

tests/data/config/good/kubectl_export_istio/export.yaml is rules/istio/ as `kubectl get
handlers,instances,rules,attributemanifests -A -o yaml` prints it from a cluster: one `kind: List`
(apiVersion v1), the items grouped by kind in the order asked and by namespace and name within a kind,
every mapping's keys sorted, and the metadata the API server and `kubectl apply` add (annotations with
the last applied configuration, creationTimestamp, generation, resourceVersion, selfLink, uid).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from mixerd.attribute import AttributeBag
from mixerd.bundled import rules_folder
from mixerd.config import ConfigRejected, load_snapshot
from mixerd.config.loader import split_documents
from mixerd.config.manifests import load_manifest
from mixerd.config.model import Snapshot
from mixerd.config.resources import IGNORED_METADATA
from mixerd.plugins import load_adapters
from mixerd.testing import typical_http_bag

DATA = Path(__file__).resolve().parents[2] / "data" / "config"
EXPORT = DATA / "good" / "kubectl_export_istio"


def _view(snapshot: Snapshot, bag_values: dict[str, Any]) -> dict[str, Any]:
    """What a snapshot does, without where it was read from: handlers (adapter, params, instances),
    instances (template, field types, bindings, and what each builds from a sample request), rules."""
    built = {}
    for fqn, builder in snapshot.instances.items():
        try:
            built[fqn] = builder.build(AttributeBag(bag_values))
        except Exception as e:  # an instance that cannot be built from this bag: compare the failure
            built[fqn] = repr(e)
    return {
        "manifest": dict(snapshot.manifest),
        "handlers": {
            fqn: (h.adapter.name, h.params, dict(h.instances), h.key) for fqn, h in snapshot.handlers.items()
        },
        "instances": {
            fqn: (
                b.template.name,
                b.info.types,
                {n: e.text for n, e in b.bindings},
            )  # a map: kubectl sorts it
            for fqn, b in snapshot.instances.items()
        },
        "built": built,
        "rules": {
            r.fqn: (
                r.namespace,
                r.match.text,
                r.actions,
                r.request_header_operations,
                r.response_header_operations,
            )
            for r in snapshot.rules
        },
        "kinds": dict(sorted(snapshot.resources_by_kind.items())),
    }


def test_a_kubectl_export_of_the_istio_config_is_the_same_config() -> None:
    adapters = load_adapters()
    from_export = load_snapshot(EXPORT, adapters)
    from_folder = load_snapshot(rules_folder("istio"), adapters)
    for n in range(3):
        bag = typical_http_bag(n)
        assert _view(from_export, bag) == _view(from_folder, bag)
    assert len(from_export.rules) == 6 and len(from_export.instances) == 9 and len(from_export.handlers) == 2


def test_the_export_is_one_kubectl_list_with_server_metadata() -> None:
    """The test data has the shape kubectl gives it (so the test above means what it says)."""
    raw = yaml.safe_load((EXPORT / "export.yaml").read_text(encoding="utf-8"))
    assert list(raw) == ["apiVersion", "items", "kind", "metadata"]
    assert (raw["apiVersion"], raw["kind"], raw["metadata"]) == (
        "v1",
        "List",
        {"resourceVersion": "", "selfLink": ""},
    )
    kinds = [item["kind"] for item in raw["items"]]
    assert kinds == sorted(kinds, key=["handler", "instance", "rule", "attributemanifest"].index)
    for item in raw["items"]:
        assert list(item) == ["apiVersion", "kind", "metadata", "spec"]
        assert item["apiVersion"] == "config.istio.io/v1alpha2"
        meta = item["metadata"]
        assert list(meta) == sorted(meta)
        assert {
            "annotations",
            "creationTimestamp",
            "generation",
            "resourceVersion",
            "selfLink",
            "uid",
        } <= set(meta)
        assert "kubectl.kubernetes.io/last-applied-configuration" in meta["annotations"]
        assert meta["namespace"] == "istio-system"


def _check(tmp_path: Path, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(ConfigRejected) as info:
        load_snapshot(tmp_path, load_adapters())
    return [str(e) for e in info.value.errors]


HANDLER = """\
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: deny, namespace: default}
spec: {compiledAdapter: denier}
"""
LIST = """\
apiVersion: v1
kind: List
metadata: {resourceVersion: "", selfLink: ""}
items:
- apiVersion: config.istio.io/v1alpha2
  kind: handler
  metadata: {name: deny, namespace: default, uid: 1f2e, resourceVersion: "12", generation: 1}
  spec: {compiledAdapter: denier}
- apiVersion: config.istio.io/v1alpha2
  kind: instance
  metadata: {name: nothing, namespace: default}
  spec: {compiledTemplate: checknothing}
- apiVersion: config.istio.io/v1alpha2
  kind: rule
  metadata: {name: deny, namespace: default}
  spec:
    match: source.name = "x"
    actions: [{handler: deny, instances: [nothing]}]
- 42
"""


def test_problems_of_an_item_name_the_item_and_its_resource(tmp_path: Path) -> None:
    assert _check(tmp_path, {"export.yaml": LIST}) == [
        "export.yaml (document 1, items[2]): rule 'deny.rule.default' .spec.match: unable to parse "
        "expression 'source.name = \"x\"': 1:13: expected '==', found '='",
        "export.yaml (document 1, items[3]): expected a mapping with apiVersion, kind, metadata and spec, "
        "got a number",
    ]


def test_problems_of_the_list_itself(tmp_path: Path) -> None:
    files = {
        "a.yaml": "apiVersion: v2\nkind: List\nitems: []\n",
        "b.yaml": "apiVersion: v1\nkind: List\n",
        "c.yaml": "apiVersion: v1\nkind: List\nitems: {a: 1}\n",
        "d.yaml": "apiVersion: v1\nkind: List\nitems: []\nextra: 1\nmetadata: {continue: '', owner: me}\n",
    }
    assert _check(tmp_path, files) == [
        "a.yaml (document 1) .apiVersion: 'v2' is not 'v1' (kubectl writes a kind: List as apiVersion v1)",
        "b.yaml (document 1) .items: missing (the resources of the list)",
        "c.yaml (document 1) .items: expected a list of resources, got a mapping",
        "d.yaml (document 1) .extra: unknown field (a List has: apiVersion, kind, items, metadata)",
        "d.yaml (document 1) .metadata.owner: unknown field (a list's metadata holds: resourceVersion, "
        "selfLink, continue, remainingItemCount)",
    ]


def test_a_typed_list_from_the_api_lends_its_items_their_kind(tmp_path: Path) -> None:
    """`kubectl get --raw /apis/config.istio.io/v1alpha2/handlers` answers with a handlerList."""
    (tmp_path / "raw.yaml").write_text(
        "apiVersion: config.istio.io/v1alpha2\n"
        "kind: handlerList\n"
        "metadata: {continue: '', resourceVersion: '5521',\n"
        "           selfLink: /apis/config.istio.io/v1alpha2/handlers}\n"
        "items:\n"
        "- metadata: {name: deny, namespace: default}\n"
        "  spec: {compiledAdapter: denier}\n"
        "---\n"
        "apiVersion: config.istio.io/v1alpha2\n"
        "kind: rule\n"
        "metadata: {name: deny, namespace: default}\n"
        "spec: {actions: [{handler: deny, instances: [nothing]}]}\n"
        "---\n"
        "apiVersion: config.istio.io/v1alpha2\n"
        "kind: instanceList\n"
        "items:\n"
        "- {apiVersion: config.istio.io/v1alpha2, kind: instance,\n"
        "   metadata: {name: nothing, namespace: default}, spec: {compiledTemplate: checknothing}}\n",
        encoding="utf-8",
    )
    snapshot = load_snapshot(tmp_path, load_adapters())
    assert sorted(snapshot.handlers) == ["deny.handler.default"]
    assert dict(snapshot.resources_by_kind) == {"handler": 1, "rule": 1, "instance": 1}


def test_server_metadata_and_status_are_ignored_other_metadata_is_an_error(tmp_path: Path) -> None:
    shapes = {
        "annotations": "{}",
        "labels": "{}",
        "finalizers": "[]",
        "managedFields": "[]",
        "ownerReferences": "[]",
    }
    meta = ", ".join(f"{key}: {shapes.get(key, 'x')}" for key in IGNORED_METADATA)
    ok = (
        "apiVersion: config.istio.io/v1alpha2\nkind: handler\n"
        f"metadata: {{name: deny, namespace: default, {meta}}}\n"
        "spec: {compiledAdapter: denier}\nstatus: {validationMessages: [], anything: 1}\n"
    )
    (tmp_path / "ok.yaml").write_text(ok, encoding="utf-8")
    load_snapshot(tmp_path, load_adapters())
    typo = HANDLER.replace("namespace: default", "namspace: x")
    (tmp_path / "ok.yaml").unlink()
    (problem,) = _check(tmp_path, {"typo.yaml": typo})
    assert problem.startswith(
        "typo.yaml: handler 'deny.handler.istio-system' .metadata.namspace: unknown field (known: name, "
        "namespace, and Kubernetes' own fields, which mixerd ignores: annotations, clusterName, "
    )


def test_a_resource_defined_in_a_list_and_again_is_named_by_its_item(tmp_path: Path) -> None:
    problems = _check(
        tmp_path,
        {"export.yaml": LIST.replace('source.name = "x"', "true").replace("- 42\n", ""), "z.yaml": HANDLER},
    )
    assert problems == [
        "z.yaml: handler 'deny.handler.default' .metadata.name: defined twice; also in export.yaml "
        "(document 1, items[0])"
    ]


def test_attribute_manifests_in_a_list_are_read_by_eval(tmp_path: Path) -> None:
    """`mixerd eval --config` reads only attribute manifests: those inside a list too."""
    (tmp_path / "export.yaml").write_text(
        "apiVersion: v1\nkind: List\nitems:\n"
        "- apiVersion: config.istio.io/v1alpha2\n  kind: attributemanifest\n"
        "  metadata: {name: custom, namespace: istio-system, uid: abc}\n"
        "  spec: {attributes: {custom.tenant: {valueType: STRING}}}\n",
        encoding="utf-8",
    )
    assert load_manifest(tmp_path)["custom.tenant"].name == "STRING"


def test_an_item_is_a_document_of_its_own() -> None:
    errors: list = []
    docs = split_documents("f.yaml", "a: 1\n---\n" + LIST, errors)
    assert errors == []
    assert [(d.number, d.item) for d in docs] == [(1, None), (2, 0), (2, 1), (2, 2), (2, 3)]
    assert docs[3].where == "f.yaml (document 2, items[2])"
    assert dataclasses.replace(docs[0]).where == "f.yaml (document 1)"
