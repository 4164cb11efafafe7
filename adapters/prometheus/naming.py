"""Exported names and metric definitions: Mixer's name sanitising, bucket layouts, and `MetricDef`, the
part of a MetricInfo that decides whether two configs describe the same metric."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .params import BucketsDefinition, Kind, MetricInfo

#: The Prometheus Go client's default buckets, which Mixer used for a DISTRIBUTION without buckets.
DEFAULT_BOUNDS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

DEFAULT_NAMESPACE = "istio"

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

_REPLACE = str.maketrans({"/": "_", ".": "_", " ": "_", "-": None})


def safe_name(text: str) -> str:
    """Mixer's sanitising: one leading `/` trimmed, then `/`, `.` and space become `_` and `-` goes."""
    return text.removeprefix("/").translate(_REPLACE)


def exported_name(info: MetricInfo) -> str:
    """`<namespace>_<name>`, each sanitised; an empty name is the instance name, an empty namespace istio."""
    namespace = safe_name(info.namespace) if info.namespace else DEFAULT_NAMESPACE
    return f"{namespace}_{safe_name(info.name or info.instance_name)}"


def bucket_bounds(buckets: BucketsDefinition | None) -> tuple[float, ...]:
    """The finite upper bounds of a DISTRIBUTION (the +Inf bucket is implicit)."""
    if buckets is not None:
        if buckets.explicit_buckets is not None:
            return tuple(float(b) for b in buckets.explicit_buckets.bounds)
        if buckets.linear_buckets is not None:
            lin = buckets.linear_buckets
            return tuple(lin.offset + lin.width * i for i in range(lin.num_finite_buckets + 1))
        if buckets.exponential_buckets is not None:
            exp = buckets.exponential_buckets
            return tuple(exp.scale * exp.growth_factor**i for i in range(exp.num_finite_buckets + 1))
    return DEFAULT_BOUNDS


@dataclass(frozen=True, slots=True)
class MetricDef:
    """What a metric is; a config change that changes any of it redefines the metric."""

    name: str
    kind: Kind
    label_names: tuple[str, ...]  # sanitised, in the configured order
    bounds: tuple[float, ...]  # DISTRIBUTION only; () for the others
    description: str

    @classmethod
    def of(cls, info: MetricInfo) -> MetricDef:
        bounds = bucket_bounds(info.buckets) if info.kind == Kind.DISTRIBUTION else ()
        labels = tuple(safe_name(label) for label in info.label_names)
        return cls(exported_name(info), info.kind, labels, bounds, info.description)

    def differences(self, other: MetricDef) -> list[str]:
        """The parts that differ from `other`, by name (kind, labels, buckets, description)."""
        parts = (
            ("kind", self.kind != other.kind),
            ("labels", self.label_names != other.label_names),
            ("buckets", self.bounds != other.bounds),
            ("description", self.description != other.description),
        )
        return [name for name, differs in parts if differs]
