"""Config documents as resources: kind, name, namespace, spec and FQN, named as in Mixer (MIXER.md 5.1, 5.5).

A resource's FQN is `<name>.<kind>.<namespace>`; legacy per-adapter kinds (`kind: denier`) are handlers
and legacy per-template kinds (`kind: metric`) are instances, whose spec *is* the params.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .loader import Document

API_VERSION = "config.istio.io/v1alpha2"
API_GROUP = "config.istio.io"

RULE, INSTANCE, HANDLER, MANIFEST = "rule", "instance", "handler", "attributemanifest"
_OUT_OF_PROCESS = ("adapter", "template")


@dataclass(frozen=True, slots=True)
class Resource:
    kind: str  # as written: rule, instance, handler, attributemanifest, or a legacy kind
    name: str
    namespace: str
    spec: Mapping[str, Any]
    document: Document
    legacy: bool = False  # a per-adapter or per-template kind: the spec is the params

    @property
    def fqn(self) -> str:
        return f"{self.name}.{self.kind}.{self.namespace}"

    def error(self, path: str, reason: str) -> ConfigError:
        return ConfigError(self.document.file, reason, self.document.number, self.kind, self.fqn, path)


def parse_resources(
    documents: list[Document],
    *,
    default_namespace: str,
    adapters: Collection[str],
    templates: Collection[str],
    errors: list[ConfigError],
) -> list[Resource]:
    """The resources in `documents`; each document that is not one is reported in `errors`."""
    out: list[Resource] = []
    seen: dict[str, Resource] = {}
    for doc in documents:
        resource = _parse(doc, default_namespace, adapters, templates, errors)
        if resource is None:
            continue
        earlier = seen.get(resource.fqn)
        if earlier is not None:
            errors.append(
                resource.error(
                    ".metadata.name",
                    f"defined twice; also in {earlier.document.file} (document {earlier.document.number})",
                )
            )
            continue
        seen[resource.fqn] = resource
        out.append(resource)
    return out


def _parse(
    doc: Document,
    default_namespace: str,
    adapters: Collection[str],
    templates: Collection[str],
    errors: list[ConfigError],
) -> Resource | None:
    def fail(path: str, reason: str) -> None:
        errors.append(ConfigError(doc.file, reason, doc.number, path=path))

    data = doc.data
    if not isinstance(data, Mapping):
        fail("", f"expected a mapping with apiVersion, kind, metadata and spec, got {type(data).__name__}")
        return None
    unknown = sorted(set(map(str, data)) - {"apiVersion", "kind", "metadata", "spec", "status"})
    if unknown:
        fail(f".{unknown[0]}", "unknown field (known: apiVersion, kind, metadata, spec)")
        return None
    api_version = data.get("apiVersion")
    kind = data.get("kind")
    if api_version != API_VERSION:
        group = str(api_version).split("/")[0]
        hint = "" if group != API_GROUP else f" (Mixer's resources are {API_VERSION})"
        fail(".apiVersion", f"{api_version!r} is not {API_VERSION!r}{hint}")
        return None
    if not isinstance(kind, str) or not kind:
        fail(".kind", "missing")
        return None
    legacy = kind not in (RULE, INSTANCE, HANDLER, MANIFEST)
    if kind in _OUT_OF_PROCESS:
        fail(
            ".kind",
            f"{kind!r}: out-of-process adapters are not supported by mixerd; install the adapter as a plugin",
        )
        return None
    if legacy and kind not in adapters and kind not in templates:
        fail(
            ".kind",
            f"unknown kind {kind!r} (known: rule, instance, handler, attributemanifest, "
            "an adapter or a template name)",
        )
        return None
    metadata = data.get("metadata")
    if not isinstance(metadata, Mapping) or not metadata.get("name"):
        fail(".metadata.name", "missing")
        return None
    name = str(metadata["name"])
    namespace = str(metadata.get("namespace") or default_namespace)
    spec = data.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        errors.append(
            ConfigError(
                doc.file,
                f"expected a mapping, got {type(spec).__name__}",
                doc.number,
                kind,
                f"{name}.{kind}.{namespace}",
                ".spec",
            )
        )
        return None
    return Resource(kind, name, namespace, spec, doc, legacy)


def resolve_reference(ref: str, kind: str, namespace: str, known: Collection[str]) -> str | None:
    """The FQN a rule in `namespace` means by `ref` to a resource of `kind` (MIXER.md 5.5), or None.

    exactly two dots: as written; no dot: `ref.kind.namespace`; one dot `a.b`: `a.b.namespace` (b is a
    kind, the old style) when that exists, else `a.kind.b` (b is a namespace); more dots: as written.
    """
    dots = ref.count(".")
    if dots == 0:
        candidates = [f"{ref}.{kind}.{namespace}"]
    elif dots == 1:
        a, b = ref.split(".")
        candidates = [f"{ref}.{namespace}", f"{a}.{kind}.{b}"]
    else:
        candidates = [ref]
    for fqn in candidates:
        if fqn in known:
            return fqn
    return None
