"""Quota helpers shared by quota adapters (memquota, redisquota): dimension values as text, the override
that applies to them, and the config check that every quota instance has a quota.

Mixer's quota adapters compare an override's dimensions with an instance's as text, so these helpers
fix one text per value type: the same instance lands in the same bucket and matches the same overrides
whichever adapter counts it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TypeVar

from ..attribute.values import Duration, Timestamp, ip_text
from ..params import Problem
from ._env import InstanceInfo

Dimensions = tuple[tuple[str, str], ...]  # (dimension, text) pairs sorted by dimension


class Override(Protocol):
    """A limit for the instances whose dimensions include all of these (compared as text)."""

    @property
    def dimensions(self) -> Mapping[str, str]: ...


OverrideT = TypeVar("OverrideT", bound=Override)


def dimension_text(value: Any) -> str:
    """A dimension value as text, the way it compares with an override's dimensions."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Timestamp):
        return value.isoformat()
    if isinstance(value, Duration):
        return str(value)  # Go's duration text, e.g. 1m30s
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bytes | bytearray):
        return ip_text(bytes(value)) if len(value) in (4, 16) else value.hex()
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{dimension_text(v)}" for k, v in sorted(value.items())) + "]"
    if value is None:
        return ""
    return str(value)


def dimension_texts(dimensions: Mapping[str, Any]) -> Dimensions:
    """An instance's dimensions as sorted (name, text) pairs: what names its bucket."""
    return tuple(sorted((name, dimension_text(value)) for name, value in dimensions.items()))


def matching_override(overrides: Iterable[OverrideT], dimensions: Dimensions) -> OverrideT | None:
    """The first override whose dimensions all have these texts, or None (the quota's own limit)."""
    texts = dict(dimensions)
    for override in overrides:
        if all(texts.get(k) == v for k, v in override.dimensions.items()):
            return override
    return None


def unconfigured_quotas(configured: Iterable[str], instances: Mapping[str, InstanceInfo]) -> list[Problem]:
    """A problem at `.quotas` for every quota instance rules send that has no quota configured."""
    names = set(configured)
    return [
        (".quotas", f"no quota is configured for instance {name!r}")
        for name, info in sorted(instances.items())
        if info.template == "quota" and name not in names
    ]
