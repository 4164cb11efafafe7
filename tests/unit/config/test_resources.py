"""Resource names and references (MIXER.md 5.5): FQNs, the four dot cases and their fallback order."""

from __future__ import annotations

import pytest

from mixerd.config.loader import Document
from mixerd.config.resources import (
    parse_resources,
    reference_candidates,
    resolve_reference,
    unresolved_reason,
)

KNOWN = {
    "deny.handler.ns1",  # a handler in the rule's namespace
    "deny.handler.ns2",  # a handler of the same name elsewhere
    "deny.denier.ns1",  # a legacy handler, named with its kind
    "ns2.handler.ns1",  # a handler whose *name* is the other namespace's name
    "a.b.handler.ns1",  # a name with a dot in it
}


def test_no_dot_is_a_name_in_the_rules_namespace() -> None:
    assert reference_candidates("deny", "handler", "ns1") == ["deny.handler.ns1"]
    assert resolve_reference("deny", "handler", "ns1", KNOWN) == "deny.handler.ns1"
    assert resolve_reference("deny", "handler", "ns3", KNOWN) is None


def test_one_dot_tries_name_dot_kind_first_then_name_dot_namespace() -> None:
    assert reference_candidates("deny.ns2", "handler", "ns1") == ["deny.ns2.ns1", "deny.handler.ns2"]
    assert resolve_reference("deny.denier", "handler", "ns1", KNOWN) == "deny.denier.ns1"  # b is a kind
    assert resolve_reference("deny.ns2", "handler", "ns1", KNOWN) == "deny.handler.ns2"  # b is a namespace
    # both readings exist: the old style (b is a kind) wins
    assert resolve_reference("deny.handler", "handler", "ns1", KNOWN | {"deny.handler.handler"}) == (
        "deny.handler.ns1"
    )
    assert resolve_reference("deny.ns3", "handler", "ns1", KNOWN) is None


def test_two_dots_are_an_fqn_as_written() -> None:
    assert reference_candidates("deny.handler.ns2", "handler", "ns1") == ["deny.handler.ns2"]
    assert resolve_reference("deny.handler.ns2", "handler", "ns1", KNOWN) == "deny.handler.ns2"
    assert resolve_reference("deny.instance.ns2", "handler", "ns1", KNOWN) is None


def test_more_dots_are_used_as_written() -> None:
    assert reference_candidates("a.b.handler.ns1", "handler", "ns9") == ["a.b.handler.ns1"]
    assert resolve_reference("a.b.handler.ns1", "handler", "ns9", KNOWN) == "a.b.handler.ns1"
    # a dotted name is not found from its short form: `a.b` reads as name.kind or name.namespace
    assert resolve_reference("a.b", "handler", "ns1", KNOWN) is None


def test_unresolved_reasons_name_what_was_tried_and_legacy_lookalikes() -> None:
    assert unresolved_reason("deny.ns3", "handler", "ns1", KNOWN) == (
        "handler 'deny.ns3' not found (looked for 'deny.ns3.ns1' or 'deny.handler.ns3')"
    )
    assert unresolved_reason("deny", "handler", "ns1", {"deny.denier.ns1"}) == (
        "handler 'deny' not found (looked for 'deny.handler.ns1'); "
        "'deny.denier.ns1' exists: refer to it as 'deny.denier'"
    )


def _parse(*docs: object, default_namespace: str = "istio-system") -> tuple[list[str], list[str]]:
    errors: list = []
    documents = [Document("f.yaml", i, d) for i, d in enumerate(docs, 1)]
    resources = parse_resources(
        documents,
        default_namespace=default_namespace,
        adapters={"denier"},
        templates={"checknothing"},
        errors=errors,
    )
    return [r.fqn for r in resources], [str(e) for e in errors]


def _doc(kind: str, name: str, namespace: str | None = None, **extra: object) -> dict:
    metadata = {"name": name} | ({"namespace": namespace} if namespace else {})
    return {"apiVersion": "config.istio.io/v1alpha2", "kind": kind, "metadata": metadata, **extra}


def test_fqns_use_the_kind_as_written_and_the_default_namespace() -> None:
    fqns, errors = _parse(
        _doc("handler", "h", "ns"),
        _doc("denier", "h", "ns"),
        _doc("checknothing", "i"),
        default_namespace="dflt",
    )
    assert fqns == ["h.handler.ns", "h.denier.ns", "i.checknothing.dflt"]
    assert errors == []


@pytest.mark.parametrize(
    ("doc", "error"),
    [
        (
            {"kind": "rule"},
            "f.yaml (document 1) .apiVersion: missing (Mixer's resources are config.istio.io/v1alpha2)",
        ),
        (_doc("", "x"), "f.yaml (document 1) .kind: missing"),
        (_doc(["rule"], "x"), "f.yaml (document 1) .kind: expected a string, got a list"),  # type: ignore[arg-type]
        (_doc("rule", 12), "f.yaml (document 1) .metadata.name: expected a string, got a number"),  # type: ignore[arg-type]
        (
            _doc("rule", "x") | {"metadata": "x"},
            "f.yaml (document 1) .metadata: expected a mapping, got a string",
        ),
        (
            "text",
            "f.yaml (document 1): expected a mapping with apiVersion, kind, metadata and spec, got a string",
        ),
    ],
)
def test_documents_that_are_not_resources(doc: object, error: str) -> None:
    assert _parse(doc) == ([], [error])


def test_a_resource_with_a_bad_envelope_still_exists_so_references_to_it_resolve() -> None:
    fqns, errors = _parse(_doc("handler", "h", "ns", spec="x", extra=1))
    assert fqns == ["h.handler.ns"]
    assert errors == [
        "f.yaml: handler 'h.handler.ns' .extra: unknown field (known: apiVersion, kind, metadata, spec)",
        "f.yaml: handler 'h.handler.ns' .spec: expected a mapping, got a string",
    ]
