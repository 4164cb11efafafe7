"""memquota's params (Mixer's `adapter.memquota.config.Params`), with defaults = Mixer's default config."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from mixerd.adapter import Duration

_ZERO = Duration(0)  # module constants: Duration is immutable, so sharing is safe
_ONE_SECOND = Duration(1_000_000_000)


@dataclass
class Override:
    """A limit for the instances whose dimensions include all of these (compared as text)."""

    dimensions: dict[str, str] = field(default_factory=dict)
    max_amount: int = 0
    valid_duration: Duration = _ZERO  # replaces the quota's; 0 = an allocation quota


@dataclass
class Quota:
    """The limit of one quota instance, named by its FQN (e.g. requestcount.instance.istio-system)."""

    name: str = ""
    max_amount: int = 0
    valid_duration: Duration = _ZERO  # > 0: a rate limit over this rolling window; 0: an allocation quota
    overrides: list[Override] = field(default_factory=list)


@dataclass
class Params:
    quotas: list[Quota] = field(default_factory=list)
    min_deduplication_duration: Duration = _ONE_SECOND

    def check(self) -> Iterator[tuple[str, str]]:
        """Every rule the types cannot say, as (path, reason)."""
        if self.min_deduplication_duration <= 0:
            yield (
                ".minDeduplicationDuration",
                f"must be greater than 0, got {self.min_deduplication_duration}",
            )
        first: dict[str, int] = {}
        for i, quota in enumerate(self.quotas):
            at = f".quotas[{i}]"
            if not quota.name:
                yield (
                    f"{at}.name",
                    "must name a quota instance by its FQN (e.g. requestcount.instance.default)",
                )
            elif quota.name in first:
                yield f"{at}.name", f"duplicate quota {quota.name!r} (also at .quotas[{first[quota.name]}])"
            else:
                first[quota.name] = i
            yield from _check_limit(at, quota.max_amount, quota.valid_duration)
            for j, override in enumerate(quota.overrides):
                yield from _check_limit(f"{at}.overrides[{j}]", override.max_amount, override.valid_duration)


def _check_limit(at: str, max_amount: int, valid_duration: Duration) -> Iterator[tuple[str, str]]:
    if max_amount < 0:
        yield f"{at}.maxAmount", f"must not be negative, got {max_amount}"
    if valid_duration < 0:
        yield f"{at}.validDuration", f"must not be negative, got {valid_duration}"
