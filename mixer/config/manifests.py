"""Attribute manifests: the vocabulary and types every expression of the config is checked against.

Istio's vocabulary is built in; `attributemanifest` resources add to it, whatever their namespace
(MIXER.md 5.5). Every problem of every manifest is reported; two manifests that give one attribute
different types are an error (the one read later names the earlier).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..attribute import BUILTIN_MANIFEST, AttributeManifest
from ..attribute.manifest import AttributeInfo
from ..attribute.values import ValueType
from ..templates import TEMPLATES
from .errors import ConfigError, ConfigRejected
from .fields import Problem, read_fields, type_name
from .loader import read_documents
from .model import DEFAULT_NAMESPACE
from .resources import MANIFEST, Resource, parse_resources

_TYPES = [t for t in ValueType if t is not ValueType.VALUE_TYPE_UNSPECIFIED]
_CHOICES = ", ".join(t.name for t in _TYPES)


def compile_manifests(resources: list[Resource], errors: list[ConfigError]) -> AttributeManifest:
    """The built-in manifest, the resources' attributes, and every generator template's outputs."""
    declared: dict[str, tuple[AttributeInfo, Resource]] = {}
    for r in resources:
        if not r.spec_ok:
            continue
        problems: list[Problem] = []
        for info in _attributes(r, problems):
            earlier = declared.get(info.name)
            if earlier is not None and earlier[0].value_type != info.value_type:
                where = earlier[1].document
                problems.append(
                    (
                        f".spec.attributes[{info.name!r}]",
                        f"declared {info.value_type.name} here and {earlier[0].value_type.name} "
                        f"in {where.where}",
                    )
                )
                continue
            declared[info.name] = (info, r)
        errors.extend(r.error(path, reason) for path, reason in problems)
    # Attribute generators' outputs are attributes too, under their template's output prefix.
    generated = {
        t.output_prefix + f.name: AttributeInfo(t.output_prefix + f.name, f.type or ValueType.STRING)
        for t in TEMPLATES.values()
        for f in t.output
    }
    user = {name: info for name, (info, _) in declared.items()}
    return BUILTIN_MANIFEST.merged(AttributeManifest(user), AttributeManifest(generated))


def _attributes(r: Resource, problems: list[Problem]) -> list[AttributeInfo]:
    spec = read_fields(r.spec, ("name", "revision", "attributes"), ".spec", problems)
    attributes = spec.get("attributes", {})
    path = spec.path("attributes")
    if not isinstance(attributes, Mapping):
        problems.append(
            (path, f"expected a mapping of attribute name -> valueType, got {type_name(attributes)}")
        )
        return []
    out = []
    for name, info in attributes.items():
        here = f"{path}[{str(name)!r}]"
        if not isinstance(info, Mapping):
            problems.append((here, f"expected a mapping with valueType, got {type_name(info)}"))
            continue
        fields = read_fields(info, ("value_type", "description"), here, problems)
        value_type = _value_type(fields.get("value_type"), fields.path("value_type"), problems)
        if value_type is not None:
            out.append(AttributeInfo(str(name), value_type, str(fields.get("description", ""))))
    return out


def _value_type(raw: object, path: str, problems: list[Problem]) -> ValueType | None:
    if raw is None:
        problems.append((path, f"missing: one of {_CHOICES}"))
        return None
    if isinstance(raw, str) and raw in ValueType.__members__ and raw != "VALUE_TYPE_UNSPECIFIED":
        return ValueType[raw]
    if isinstance(raw, int) and not isinstance(raw, bool) and raw in {int(t) for t in _TYPES}:
        return ValueType(raw)
    problems.append((path, f"{raw!r} is not one of {_CHOICES}"))
    return None


def load_manifest(folder: str | Path, *, default_namespace: str = DEFAULT_NAMESPACE) -> AttributeManifest:
    """The attribute vocabulary of a config folder (built-ins, its attributemanifests, generator outputs),
    for tools that only need attribute types (`mixerd eval --config`). ConfigRejected lists every problem
    in the folder's YAML or its manifests; the other resources are not looked at."""
    documents, errors = read_documents(Path(folder))
    manifests = [d for d in documents if isinstance(d.data, Mapping) and d.data.get("kind") == MANIFEST]
    resources = parse_resources(
        manifests, default_namespace=default_namespace, adapters=(), templates=TEMPLATES, errors=errors
    )
    manifest = compile_manifests(resources, errors)
    if errors:
        raise ConfigRejected(errors)
    return manifest
