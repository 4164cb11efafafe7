"""The attribute manifest: which attributes exist and their types (MIXER.md 3).

Expressions are type-checked against it; attributes that arrive but are not declared are kept in the
bag but cannot be named by an expression. Istio's vocabulary is built in (builtin_manifest.yaml); more
comes from `attributemanifest` documents, merged globally with the last declaration of a name winning.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from .values import ValueType

ATTRIBUTE_MANIFEST_KIND = "attributemanifest"


class ManifestError(ValueError):
    """A manifest document that cannot be read; the message names the source and the field path."""


@dataclass(frozen=True, slots=True)
class AttributeInfo:
    name: str
    value_type: ValueType
    description: str = ""


@dataclass(frozen=True)
class AttributeManifest(Mapping[str, ValueType]):
    """Attribute name -> ValueType (a read-only mapping), with each attribute's description."""

    attributes: Mapping[str, AttributeInfo] = field(default_factory=dict)

    def __getitem__(self, name: str) -> ValueType:
        return self.attributes[name].value_type

    def __iter__(self) -> Iterator[str]:
        return iter(self.attributes)

    def __len__(self) -> int:
        return len(self.attributes)

    def info(self, name: str) -> AttributeInfo | None:
        return self.attributes.get(name)

    def merged(self, *others: AttributeManifest) -> AttributeManifest:
        """This manifest with `others` laid over it in order (a later declaration wins)."""
        combined = dict(self.attributes)
        for other in others:
            combined.update(other.attributes)
        return AttributeManifest(combined)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], source: str = "<document>") -> AttributeManifest:
        """Read one `attributemanifest` document (its `spec.attributes`), lowerCamel or snake_case."""
        spec = doc.get("spec") or {}
        if not isinstance(spec, Mapping):
            raise ManifestError(f"{source}: .spec: expected a mapping, got {type(spec).__name__}")
        attributes = spec.get("attributes") or {}
        if not isinstance(attributes, Mapping):
            raise ManifestError(f"{source}: .spec.attributes: expected a mapping of attribute name to info")
        out: dict[str, AttributeInfo] = {}
        for name, info in attributes.items():
            path = f"{source}: .spec.attributes[{name!r}]"
            if not isinstance(info, Mapping):
                raise ManifestError(f"{path}: expected a mapping with valueType")
            unknown = set(info) - {"valueType", "value_type", "description"}
            if unknown:
                raise ManifestError(f"{path}: unknown field {sorted(unknown)[0]!r}")
            type_name = info.get("valueType", info.get("value_type"))
            try:
                value_type = ValueType[str(type_name)]
            except KeyError:
                choices = ", ".join(t.name for t in ValueType if t)
                raise ManifestError(f"{path}.valueType: {type_name!r} is not one of {choices}") from None
            if value_type is ValueType.VALUE_TYPE_UNSPECIFIED:
                raise ManifestError(f"{path}.valueType: an attribute needs a type")
            out[str(name)] = AttributeInfo(str(name), value_type, str(info.get("description") or ""))
        return cls(out)

    @classmethod
    def from_yaml(cls, text: str, source: str = "<yaml>") -> AttributeManifest:
        """Every `attributemanifest` document in a multi-document YAML text, merged in order."""
        try:
            docs = [d for d in yaml.safe_load_all(text) if d]
        except yaml.YAMLError as e:
            raise ManifestError(f"{source}: {e}") from None
        return cls.merge_documents(docs, source)

    @classmethod
    def merge_documents(cls, docs: Iterable[Mapping[str, Any]], source: str) -> AttributeManifest:
        result = cls()
        for number, doc in enumerate(docs, 1):
            if isinstance(doc, Mapping) and doc.get("kind") == ATTRIBUTE_MANIFEST_KIND:
                result = result.merged(cls.from_document(doc, f"{source} (document {number})"))
        return result


def _load_builtin() -> AttributeManifest:
    text = resources.files(__package__).joinpath("builtin_manifest.yaml").read_text(encoding="utf-8")
    return AttributeManifest.from_yaml(text, "builtin_manifest.yaml")


#: Istio's standard attribute vocabulary.
BUILTIN_MANIFEST: AttributeManifest = _load_builtin()
