"""Kubernetes list documents: a config exported from a cluster.

`kubectl get handlers,instances,rules,attributemanifests -A -o yaml` writes one document, a `kind: List`
(apiVersion v1) whose `items` are the resources, each complete with its `metadata.namespace`. The API
server itself (`kubectl get --raw`, client libraries) answers with typed lists: `kind: handlerList` and
the like (a kind plus `List`, Kubernetes' default for a custom resource without a listKind, which
Istio's Mixer CRDs leave out), apiVersion config.istio.io/v1alpha2. Either way each item is read as a
document of its own, and its problems name it: `export.yaml (document 1, items[3]): rule '...' ...`.

A list's own `metadata` is the API server's (ListMeta: resourceVersion, selfLink, continue,
remainingItemCount) and is ignored; any other field of a list is an error, as everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import ConfigError
from .fields import type_name

# resources.API_VERSION (not imported: resources reads documents through the loader, which uses this).
_CONFIG_API_VERSION = "config.istio.io/v1alpha2"
_LIST_FIELDS = ("apiVersion", "kind", "items", "metadata")
#: A list's metadata (Kubernetes' ListMeta): how the API server paged and versioned its answer.
LIST_METADATA = ("resourceVersion", "selfLink", "continue", "remainingItemCount")


def list_items(data: Any, file: str, number: int, errors: list[ConfigError]) -> list[tuple[int, Any]] | None:
    """The (index, resource) pairs of a list document; None when `data` is not a list document. The
    list's own problems go to `errors` (named by file and document); an item's are its parser's."""
    if not isinstance(data, Mapping):
        return None
    kind, api_version = data.get("kind"), data.get("apiVersion")
    item_kind: str | None = None
    if kind == "List":
        if api_version != "v1":
            shown = "missing" if api_version in (None, "") else f"{api_version!r} is not 'v1'"
            errors.append(
                ConfigError(
                    file,
                    f"{shown} (kubectl writes a kind: List as apiVersion v1)",
                    number,
                    path=".apiVersion",
                )
            )
            return []
    elif (
        isinstance(kind, str)
        and kind.endswith("List")
        and len(kind) > 4
        and api_version == _CONFIG_API_VERSION
    ):
        item_kind = kind[: -len("List")]
    else:
        return None

    def fail(path: str, reason: str) -> None:
        errors.append(ConfigError(file, reason, number, path=path))

    for key in data:
        if key not in _LIST_FIELDS:
            fail(f".{key}", f"unknown field (a {kind} has: {', '.join(_LIST_FIELDS)})")
    metadata = data.get("metadata")
    if isinstance(metadata, Mapping):
        for key in metadata:
            if key not in LIST_METADATA:
                fail(
                    f".metadata.{key}", f"unknown field (a list's metadata holds: {', '.join(LIST_METADATA)})"
                )
    elif metadata is not None:
        fail(".metadata", f"expected a mapping, got {type_name(metadata)}")
    items = data.get("items")
    if items is None:
        fail(".items", "missing (the resources of the list)")
        return []
    if not isinstance(items, list):
        fail(".items", f"expected a list of resources, got {type_name(items)}")
        return []
    if item_kind is None:
        return list(enumerate(items))
    # A typed list's items may leave out the apiVersion and kind the list names.
    typed = {"apiVersion": _CONFIG_API_VERSION, "kind": item_kind}
    return [(i, typed | item if isinstance(item, Mapping) else item) for i, item in enumerate(items)]
