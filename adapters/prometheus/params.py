"""prometheus params (Mixer's `adapter.prometheus.config.Params`): the metrics to export and their expiry.

The rules that need only the params are here (`check()`); the rules that need the instances rules send
the handler (a MetricInfo per instance, dimensions equal to the label names) are in validation.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum

from mixerd.adapter import Duration, Problem, format_go_duration

# A module constant, not a call in a field default: Duration is immutable, so sharing one is safe.
_NO_DURATION = Duration(0)


class Kind(IntEnum):
    """MetricInfo.Kind: how an instance's value changes its series."""

    UNSPECIFIED = 0
    GAUGE = 1
    COUNTER = 2
    DISTRIBUTION = 3


@dataclass
class LinearBuckets:
    """`num_finite_buckets + 1` upper bounds `offset + width * i`."""

    num_finite_buckets: int = 0
    width: float = 0.0
    offset: float = 0.0

    def check(self) -> Iterator[Problem]:
        if self.num_finite_buckets <= 0:
            yield ".numFiniteBuckets", f"must be more than 0, got {self.num_finite_buckets}"
        if not (math.isfinite(self.width) and self.width > 0):
            yield ".width", f"must be more than 0, got {self.width}"
        if not math.isfinite(self.offset):
            yield ".offset", f"must be a finite number, got {self.offset}"


@dataclass
class ExponentialBuckets:
    """`num_finite_buckets + 1` upper bounds `scale * growth_factor ** i`."""

    num_finite_buckets: int = 0
    growth_factor: float = 0.0
    scale: float = 0.0

    def check(self) -> Iterator[Problem]:
        if self.num_finite_buckets <= 0:
            yield ".numFiniteBuckets", f"must be more than 0, got {self.num_finite_buckets}"
        if not (math.isfinite(self.growth_factor) and self.growth_factor > 1):
            yield ".growthFactor", f"must be more than 1, got {self.growth_factor}"
        if not (math.isfinite(self.scale) and self.scale > 0):
            yield ".scale", f"must be more than 0, got {self.scale}"


@dataclass
class ExplicitBuckets:
    """The upper bounds as given (the +Inf bucket is implicit)."""

    bounds: list[float] = field(default_factory=list)

    def check(self) -> Iterator[Problem]:
        if not self.bounds:
            yield ".bounds", "must list at least one bound"
        for i, bound in enumerate(self.bounds):
            if not math.isfinite(bound):
                yield f".bounds[{i}]", f"must be a finite number, got {bound}"
            elif i > 0 and not bound > self.bounds[i - 1]:
                yield f".bounds[{i}]", f"bounds must increase: {bound} follows {self.bounds[i - 1]}"


@dataclass
class BucketsDefinition:
    """A oneof: at most one layout; none set means the client library's default buckets."""

    linear_buckets: LinearBuckets | None = None
    exponential_buckets: ExponentialBuckets | None = None
    explicit_buckets: ExplicitBuckets | None = None

    def check(self) -> Iterator[Problem]:
        given = [
            name
            for name, value in (
                ("linearBuckets", self.linear_buckets),
                ("exponentialBuckets", self.exponential_buckets),
                ("explicitBuckets", self.explicit_buckets),
            )
            if value is not None
        ]
        if len(given) > 1:
            yield "", f"it is a oneof: set only one of {', '.join(given)}"


@dataclass
class MetricInfo:
    # The instance (its FQN, e.g. requestcount.instance.istio-system) whose values this metric records.
    instance_name: str
    # The metric's name under the namespace; empty: the instance name.
    name: str = ""
    description: str = ""
    kind: Kind = Kind.UNSPECIFIED
    # For DISTRIBUTION only (ignored otherwise).
    buckets: BucketsDefinition | None = None
    # Must be the instance's dimension keys.
    label_names: list[str] = field(default_factory=list)
    # Prefix of the exported name; empty means "istio", as in Mixer.
    namespace: str = "istio"

    def check(self) -> Iterator[Problem]:
        if not self.instance_name:
            yield (
                ".instanceName",
                "must name the instance (its full name, e.g. requestcount.instance.istio-system)",
            )
        if self.kind == Kind.UNSPECIFIED:
            yield ".kind", "must be GAUGE, COUNTER or DISTRIBUTION"


@dataclass
class MetricsExpirationPolicy:
    # A series not updated for this long is removed.
    metrics_expiry_duration: Duration
    # How often to look for such series; 0: half the expiry duration.
    expiry_check_interval_duration: Duration = _NO_DURATION

    def check(self) -> Iterator[Problem]:
        if self.metrics_expiry_duration <= 0:
            got = format_go_duration(self.metrics_expiry_duration)
            yield ".metricsExpiryDuration", f"must be more than 0s, got {got}"
        if self.expiry_check_interval_duration < 0:
            got = format_go_duration(self.expiry_check_interval_duration)
            yield ".expiryCheckIntervalDuration", f"must not be negative, got {got}"

    @property
    def check_interval(self) -> Duration:
        """The interval in force: the one given, or half the expiry."""
        return self.expiry_check_interval_duration or Duration(self.metrics_expiry_duration // 2)


@dataclass
class Params:
    metrics: list[MetricInfo] = field(default_factory=list)
    # None: series never expire (Mixer's default; Istio's default config sets 10m).
    metrics_expiration_policy: MetricsExpirationPolicy | None = None
