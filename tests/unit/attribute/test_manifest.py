"""Attribute manifests: the built-in vocabulary and `attributemanifest` documents (MIXER.md 3.2, 3.3)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mixerd.attribute import BUILTIN_MANIFEST, AttributeInfo, AttributeManifest, ManifestError, ValueType

S, INT, B, T, D = ValueType.STRING, ValueType.INT64, ValueType.BOOL, ValueType.TIMESTAMP, ValueType.DURATION
IP, M = ValueType.IP_ADDRESS, ValueType.STRING_MAP


@pytest.mark.parametrize(
    ("name", "value_type"),
    [
        ("source.ip", IP),
        ("source.uid", S),
        ("source.port", INT),
        ("source.labels", M),
        ("destination.ip", IP),
        ("destination.port", INT),
        ("destination.service.host", S),
        ("origin.ip", IP),
        ("request.headers", M),
        ("request.query_params", M),
        ("request.size", INT),
        ("request.time", T),
        ("request.auth.claims", M),
        ("response.code", INT),
        ("response.duration", D),
        ("response.time", T),
        ("response.grpc_status", S),
        ("connection.mtls", B),
        ("connection.duration", D),
        ("connection.received.bytes", INT),
        ("connection.requested_server_name", S),
        ("context.protocol", S),
        ("context.time", T),
        ("context.reporter.local", B),
        ("context.reporter.kind", S),
        ("context.proxy_version", S),
        ("check.error_code", INT),
        ("check.cache_hit", B),
        ("quota.cache_hit", B),
        ("api.operation", S),
        ("rbac.permissive.response_code", S),
    ],
)
def test_builtin_vocabulary(name, value_type):
    assert BUILTIN_MANIFEST[name] is value_type
    info = BUILTIN_MANIFEST.info(name)
    assert info is not None and info.name == name and info.value_type is value_type


def test_builtin_has_no_unspecified_types_and_is_a_mapping():
    assert len(BUILTIN_MANIFEST) == len(list(BUILTIN_MANIFEST)) > 60
    assert all(BUILTIN_MANIFEST[n] is not ValueType.VALUE_TYPE_UNSPECIFIED for n in BUILTIN_MANIFEST)
    assert "no.such.attribute" not in BUILTIN_MANIFEST
    assert BUILTIN_MANIFEST.get("no.such.attribute") is None
    assert BUILTIN_MANIFEST.info("no.such.attribute") is None
    with pytest.raises(KeyError):
        BUILTIN_MANIFEST["no.such.attribute"]


# -- from_yaml / from_document ----------------------------------------------------------------------------

MULTI = """\
apiVersion: config.istio.io/v1alpha2
kind: attributemanifest
metadata: {name: first, namespace: istio-system}
spec:
  attributes:
    custom.a: {valueType: STRING, description: "first a"}
    custom.b: {valueType: INT64}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: not-a-manifest}
spec:
  attributes:
    custom.c: {valueType: NOT_CHECKED}
---
---
- a list, not a document of any kind
---
apiVersion: config.istio.io/v1alpha2
kind: attributemanifest
metadata: {name: second, namespace: default}
spec:
  name: producer
  revision: "1"
  attributes:
    custom.a:
      value_type: DOUBLE
    custom.d:
      valueType: STRING_MAP
      description: labels
"""


def test_from_yaml_merges_in_order_last_wins():
    m = AttributeManifest.from_yaml(MULTI, "multi.yaml")
    assert dict(m) == {
        "custom.a": ValueType.DOUBLE,
        "custom.b": ValueType.INT64,
        "custom.d": ValueType.STRING_MAP,
    }
    assert list(m) == ["custom.a", "custom.b", "custom.d"]
    # The later declaration replaces the whole entry, description included.
    assert m.info("custom.a") == AttributeInfo("custom.a", ValueType.DOUBLE, "")
    assert m.info("custom.d") == AttributeInfo("custom.d", ValueType.STRING_MAP, "labels")


def test_from_yaml_with_nothing_relevant():
    assert len(AttributeManifest.from_yaml("")) == 0
    assert len(AttributeManifest.from_yaml("kind: handler\nspec: {}\n")) == 0
    assert len(AttributeManifest.from_yaml("kind: attributemanifest\nspec: {}\n")) == 0
    assert len(AttributeManifest.from_yaml("kind: attributemanifest\n")) == 0


@pytest.mark.parametrize("spelling", ["valueType", "value_type"])
def test_both_spellings_of_value_type(spelling):
    doc = {"kind": "attributemanifest", "spec": {"attributes": {"x.y": {spelling: "EMAIL_ADDRESS"}}}}
    assert AttributeManifest.from_document(doc)["x.y"] is ValueType.EMAIL_ADDRESS


@pytest.mark.parametrize(
    "type_name", [t.name for t in ValueType if t is not ValueType.VALUE_TYPE_UNSPECIFIED]
)
def test_every_value_type_name(type_name):
    m = AttributeManifest.from_yaml(
        f"kind: attributemanifest\nspec: {{attributes: {{a.b: {{valueType: {type_name}}}}}}}"
    )
    assert m["a.b"] is ValueType[type_name]


def test_names_are_not_checked_against_the_documented_grammar():
    doc = {"spec": {"attributes": {"Weird_Name-1.x": {"valueType": "STRING"}}}}
    assert AttributeManifest.from_document(doc)["Weird_Name-1.x"] is ValueType.STRING


def test_merged():
    a = AttributeManifest.from_document({"spec": {"attributes": {"a.a": {"valueType": "STRING"}}}})
    b = AttributeManifest.from_document({"spec": {"attributes": {"a.a": {"valueType": "BOOL"}}}})
    c = AttributeManifest.from_document({"spec": {"attributes": {"c.c": {"valueType": "INT64"}}}})
    assert dict(a.merged(b, c)) == {"a.a": ValueType.BOOL, "c.c": ValueType.INT64}
    assert dict(a) == {"a.a": ValueType.STRING}  # unchanged
    assert BUILTIN_MANIFEST.merged(b)["a.a"] is ValueType.BOOL


BAD_TYPE = """\
kind: attributemanifest
spec:
  attributes:
    custom.ok: {valueType: STRING}
---
kind: attributemanifest
spec:
  attributes:
    custom.bad: {valueType: STIRNG}
"""


def test_unknown_type_names_source_document_and_path():
    with pytest.raises(ManifestError) as info:
        AttributeManifest.from_yaml(BAD_TYPE, "config/attrs.yaml")
    message = str(info.value)
    assert message.startswith("config/attrs.yaml")
    assert "document 2" in message
    assert ".spec.attributes['custom.bad'].valueType" in message
    assert "STIRNG" in message


@pytest.mark.parametrize("info", [{}, {"description": "no type"}, {"valueType": "VALUE_TYPE_UNSPECIFIED"}])
def test_missing_or_unspecified_type(info):
    doc = {"spec": {"attributes": {"custom.x": info}}}
    with pytest.raises(ManifestError, match=r"src: \.spec\.attributes\['custom\.x'\]\.valueType"):
        AttributeManifest.from_document(doc, "src")


def test_unknown_field_is_named():
    doc = {"spec": {"attributes": {"custom.x": {"valueType": "STRING", "valuType": "INT64"}}}}
    with pytest.raises(ManifestError) as info:
        AttributeManifest.from_document(doc, "src")
    message = str(info.value)
    assert "src: .spec.attributes['custom.x']" in message
    assert "'valuType'" in message


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"spec": ["not", "a", "mapping"]}, ".spec"),
        ({"spec": {"attributes": ["x"]}}, ".spec.attributes"),
        ({"spec": {"attributes": {"custom.x": "STRING"}}}, ".spec.attributes['custom.x']"),
    ],
)
def test_wrong_shapes(doc, path):
    with pytest.raises(ManifestError) as info:
        AttributeManifest.from_document({"kind": "attributemanifest", **doc}, "src")
    assert str(info.value).startswith(f"src: {path}")


def test_invalid_yaml_names_the_source():
    with pytest.raises(ManifestError, match=r"^broken\.yaml"):
        AttributeManifest.from_yaml("kind: attributemanifest\nspec: [unclosed\n", "broken.yaml")


# -- Mixer's own test manifest (shared/reference/istio-attribute-manifest.yaml) ---------------------------


def _reference_docs(reference_dir: Path) -> dict[str, dict]:
    text = (reference_dir / "istio-attribute-manifest.yaml").read_text(encoding="utf-8")
    return {d["metadata"]["name"]: d for d in yaml.safe_load_all(text) if d}


def test_reference_manifest_loads(reference_dir: Path):
    text = (reference_dir / "istio-attribute-manifest.yaml").read_text(encoding="utf-8")
    merged = AttributeManifest.from_yaml(text, "istio-attribute-manifest.yaml")
    assert merged["request.headers"] is ValueType.STRING_MAP
    assert merged["source.labels"] is ValueType.STRING_MAP
    assert len(merged) > 70


@pytest.mark.parametrize("manifest", ["istio-proxy", "kubernetes"])
def test_reference_manifest_agrees_with_builtin(reference_dir: Path, manifest):
    doc = _reference_docs(reference_dir)[manifest]
    reference = AttributeManifest.from_document(doc, manifest)
    assert len(reference) > 20
    shared = [name for name in reference if name in BUILTIN_MANIFEST]
    assert len(shared) > 20
    mismatched = {
        n: (reference[n].name, BUILTIN_MANIFEST[n].name)
        for n in shared
        if reference[n] != BUILTIN_MANIFEST[n]
    }
    assert mismatched == {}
    # The types as the reference file spells them, read independently of from_document.
    raw = {n: info["valueType"] for n, info in doc["spec"]["attributes"].items()}
    assert {n: raw[n] for n in shared} == {n: BUILTIN_MANIFEST[n].name for n in shared}


def test_builtin_covers_the_reference_vocabulary(reference_dir: Path):
    missing = sorted(
        name
        for doc in _reference_docs(reference_dir).values()
        for name in doc["spec"]["attributes"]
        if name not in BUILTIN_MANIFEST
    )
    assert missing == []
