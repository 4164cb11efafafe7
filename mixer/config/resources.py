"""Config documents as resources: kind, name, namespace, spec and FQN, named as in Mixer (MIXER.md 5.1, 5.5).

A resource's FQN is `<name>.<kind>.<namespace>`; legacy per-adapter kinds (`kind: denier`) are handlers
and legacy per-template kinds (`kind: metric`) are instances, whose spec *is* the params.

Of `metadata`, mixerd reads `name` and `namespace`. The other fields of a Kubernetes object's metadata
are ignored (IGNORED_METADATA), and so is `status`: the API server sets them (`uid`, `resourceVersion`,
...) or people and tools set them for Kubernetes' own use (`labels`, `annotations` such as kubectl's
last-applied-configuration), and Mixer read none of them; so a resource exported with `kubectl get -o
yaml` loads as it is. Any other metadata field is an error, like an unknown field anywhere.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .fields import type_name
from .loader import Document

API_VERSION = "config.istio.io/v1alpha2"
API_GROUP = "config.istio.io"

RULE, INSTANCE, HANDLER, MANIFEST = "rule", "instance", "handler", "attributemanifest"
RATELIMIT = "ratelimitconfig"  # mixerd's own: Envoy rate limit domains (docs/envoy/ratelimit.md)
KINDS = (RULE, INSTANCE, HANDLER, MANIFEST, RATELIMIT)
_OUT_OF_PROCESS = ("adapter", "template")
_TOP_LEVEL = ("apiVersion", "kind", "metadata", "spec", "status")  # status: the API server's, ignored
#: Kubernetes' ObjectMeta fields besides name and namespace (see the module docstring): ignored.
IGNORED_METADATA = (
    "annotations",
    "clusterName",
    "creationTimestamp",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
    "finalizers",
    "generateName",
    "generation",
    "labels",
    "managedFields",
    "ownerReferences",
    "resourceVersion",
    "selfLink",
    "uid",
)

#: Mixer's legacy per-adapter kinds (MIXER.md 5.1), to say "not installed" rather than "unknown".
MIXER_ADAPTER_KINDS = frozenset(
    [
        "bypass",
        "circonus",
        "cloudwatch",
        "denier",
        "dogstatsd",
        "fluentd",
        "kubernetesenv",
        "listchecker",
        "memquota",
        "noop",
        "opa",
        "prometheus",
        "rbac",
        "redisquota",
        "servicecontrol",
        "signalfx",
        "solarwinds",
        "stackdriver",
        "statsd",
        "stdio",
        "zipkin",
    ]
)


@dataclass(frozen=True, slots=True)
class Resource:
    kind: str  # as written: rule, instance, handler, attributemanifest, ratelimitconfig, or a legacy kind
    name: str
    namespace: str
    spec: Mapping[str, Any]
    document: Document
    legacy: bool = False  # a per-adapter or per-template kind: the spec is the params
    spec_ok: bool = True  # False: its spec is not a mapping (reported); it exists only to be referred to

    @property
    def fqn(self) -> str:
        return f"{self.name}.{self.kind}.{self.namespace}"

    def error(self, path: str, reason: str) -> ConfigError:
        doc = self.document
        return ConfigError(doc.file, reason, doc.number, self.kind, self.fqn, path, doc.item)


def parse_resources(
    documents: list[Document],
    *,
    default_namespace: str,
    adapters: Collection[str],
    templates: Collection[str],
    errors: list[ConfigError],
) -> list[Resource]:
    """The resources in `documents`; each problem of a document is reported in `errors`.

    A resource with a problem in its envelope (an unknown top-level field) is still returned, so that
    references to it resolve; a document that has no kind or name is not a resource.
    """
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
                    f"defined twice; also in {earlier.document.where}",
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
        errors.append(ConfigError(doc.file, reason, doc.number, path=path, item=doc.item))

    data = doc.data
    if not isinstance(data, Mapping):
        fail("", f"expected a mapping with apiVersion, kind, metadata and spec, got {type_name(data)}")
        return None
    api_version = data.get("apiVersion")
    if api_version != API_VERSION:
        problem = _api_version_problem(api_version)
        if api_version is None and "domain" in data and "descriptors" in data:
            problem += "; this is an envoyproxy/ratelimit file: serve its folder with --ratelimit-config"
        fail(".apiVersion", problem)
        return None
    kind = data.get("kind")
    if not isinstance(kind, str) or not kind:
        fail(".kind", "missing" if kind in (None, "") else f"expected a string, got {type_name(kind)}")
        return None
    problem = _kind_problem(kind, adapters, templates)
    if problem:
        fail(".kind", problem)
        return None
    metadata = data.get("metadata")
    if not isinstance(metadata, Mapping):
        fail(".metadata", "missing" if metadata is None else f"expected a mapping, got {type_name(metadata)}")
        return None
    name, namespace = metadata.get("name"), metadata.get("namespace")
    if name in (None, ""):
        fail(".metadata.name", "missing")
        return None
    if not isinstance(name, str):
        fail(".metadata.name", f"expected a string, got {type_name(name)}")
        return None
    if namespace is not None and not isinstance(namespace, str):
        fail(".metadata.namespace", f"expected a string, got {type_name(namespace)}")
        return None
    namespace = namespace or default_namespace
    spec = data.get("spec")
    spec_ok = spec is None or isinstance(spec, Mapping)
    resource = Resource(
        kind, name, namespace, spec if spec_ok and spec else {}, doc, kind not in KINDS, spec_ok
    )
    for key in data:
        if key not in _TOP_LEVEL:
            errors.append(
                resource.error(f".{key}", "unknown field (known: apiVersion, kind, metadata, spec)")
            )
    for key in metadata:
        if key not in ("name", "namespace") and key not in IGNORED_METADATA:
            errors.append(
                resource.error(
                    f".metadata.{key}",
                    "unknown field (known: name, namespace, and Kubernetes' own fields, which mixerd "
                    f"ignores: {', '.join(IGNORED_METADATA)})",
                )
            )
    if not spec_ok:
        errors.append(resource.error(".spec", f"expected a mapping, got {type_name(spec)}"))
    return resource


def _api_version_problem(api_version: Any) -> str:
    if api_version in (None, ""):
        return f"missing (Mixer's resources are {API_VERSION})"
    group = str(api_version).split("/")[0]
    hint = ""
    if group == API_GROUP:
        hint = f" (Mixer's resources are {API_VERSION})"
    elif group == "policy.istio.io":
        hint = " (policy.istio.io is only a kubectl category; Mixer's resources are config.istio.io)"
    return f"{api_version!r} is not {API_VERSION!r}{hint}"


def _kind_problem(kind: str, adapters: Collection[str], templates: Collection[str]) -> str:
    if kind in KINDS or kind in adapters or kind in templates:
        return ""
    if kind in _OUT_OF_PROCESS:
        return (
            f"{kind!r}: out-of-process adapters and templates are not supported by mixerd; "
            "install the adapter as a plugin"
        )
    if kind in MIXER_ADAPTER_KINDS:
        installed = ", ".join(adapters) or "none"
        return f"legacy handler kind {kind!r}: no adapter {kind!r} is installed (installed: {installed})"
    return (
        f"unknown kind {kind!r} (known: rule, instance, handler, attributemanifest, ratelimitconfig, "
        "or an adapter or template name for the legacy kinds)"
    )


def reference_candidates(ref: str, kind: str, namespace: str) -> list[str]:
    """The FQNs a rule in `namespace` may mean by `ref` to a resource of `kind`, in the order tried
    (MIXER.md 5.5): no dot: `ref.kind.namespace`; one dot `a.b`: `a.b.namespace` (b is a kind, the old
    style) and then `a.kind.b` (b is a namespace); two dots or more: `ref` as written."""
    dots = ref.count(".")
    if dots == 0:
        return [f"{ref}.{kind}.{namespace}"]
    if dots == 1:
        a, b = ref.split(".")
        return [f"{ref}.{namespace}", f"{a}.{kind}.{b}"]
    return [ref]


def resolve_reference(ref: str, kind: str, namespace: str, known: Collection[str]) -> str | None:
    """The FQN a rule in `namespace` means by `ref` to a resource of `kind` (MIXER.md 5.5), or None
    when no candidate (see `reference_candidates`) is in `known`."""
    for fqn in reference_candidates(ref, kind, namespace):
        if fqn in known:
            return fqn
    return None


def unresolved_reason(ref: str, kind: str, namespace: str, known: Collection[str]) -> str:
    """Why `ref` does not resolve: the FQNs tried, and a hint when a legacy-kind resource has the name."""
    tried = " or ".join(repr(c) for c in reference_candidates(ref, kind, namespace))
    reason = f"{kind} {ref!r} not found (looked for {tried})"
    if "." not in ref:
        prefix, suffix = f"{ref}.", f".{namespace}"
        legacy = sorted(k for k in known if k.startswith(prefix) and k.endswith(suffix))
        if legacy:
            other = legacy[0][len(prefix) : -len(suffix)]
            reason += f"; {legacy[0]!r} exists: refer to it as '{ref}.{other}'"
    return reason
