"""A rate limit domain compiled, from a `ratelimitconfig` resource or an envoyproxy/ratelimit file.

The descriptor tree is envoyproxy/ratelimit's (ENVOY.md section 4): each level maps a request entry to
a config descriptor, by key and value first, then by a value pattern with `*` wildcards (in config
order), then by key alone. docs/envoy/ratelimit.md is the reference; mixerd.runtime.ratelimit matches
requests against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..adapter import RateLimit
from ..regex import Regex, compile_regex, escape

_SECOND = 1_000_000_000

#: envoy.service.ratelimit.v3.RateLimitResponse.RateLimit.Unit numbers.
UNIT_NUMBERS: Mapping[str, int] = {
    "SECOND": 1,
    "MINUTE": 2,
    "HOUR": 3,
    "DAY": 4,
    "MONTH": 5,
    "YEAR": 6,
    "WEEK": 7,
}

#: Each unit's length, as envoyproxy/ratelimit counts it (a month is 30 days, a year 365).
UNIT_NS: Mapping[str, int] = {
    "SECOND": _SECOND,
    "MINUTE": 60 * _SECOND,
    "HOUR": 3600 * _SECOND,
    "DAY": 86400 * _SECOND,
    "WEEK": 7 * 86400 * _SECOND,
    "MONTH": 30 * 86400 * _SECOND,
    "YEAR": 365 * 86400 * _SECOND,
}

#: The unit's name for each Unit number.
UNIT_NAMES: Mapping[int, str] = {number: name for name, number in UNIT_NUMBERS.items()}

#: The most a limit may allow per window: DescriptorStatus.limit_remaining is a uint32.
MAX_REQUESTS_PER_UNIT = 2**32 - 1


@dataclass(frozen=True, slots=True)
class CurrentLimit:
    """What a DescriptorStatus reports as `current_limit`."""

    requests_per_unit: int
    unit: int  # UNIT_NUMBERS
    name: str = ""


@dataclass(frozen=True, slots=True)
class LimitPolicy:
    """One limit of a descriptor: the config's `rate_limit` (or an entry of `rate_limits`).

    An `unlimited: true` limit has no `current` and no `limit`: it is never counted.
    """

    current: CurrentLimit | None
    limit: RateLimit | None  # what the backend counts: max, window, algorithm, bucket
    name: str = ""
    replaces: frozenset[str] = frozenset()

    @property
    def unlimited(self) -> bool:
        return self.limit is None

    @property
    def blocks(self) -> bool:
        """`requests_per_unit: 0`: every hit is over the limit, without asking the backend."""
        return self.limit is not None and self.limit.max_amount == 0


@dataclass(frozen=True, slots=True)
class DescriptorConfig:
    """One config descriptor: a key, maybe a value (or value pattern), its limits, and what is nested."""

    key: str
    value: str | None  # None: any value, each distinct value its own counter
    limits: tuple[LimitPolicy, ...] = ()  # all must pass; an unlimited one is alone
    shadow_mode: bool = False
    share_threshold: bool = False  # a wildcard value: every matching value shares one counter
    children: DescriptorTable = field(default_factory=lambda: EMPTY_TABLE)
    # How stats name it, as envoyproxy/ratelimit does: `key` or `key_value` of each level, joined by `.`
    # (a wildcard's value is its pattern), the domain left out.
    stat_name: str = ""
    pattern: Regex | None = None  # the value's `*` wildcards, compiled
    quota_mode: bool = False  # over the limit: the request is refused only when all such descriptors are
    detailed_metric: bool = False  # stats name it by the request's entries (values included)
    value_to_metric: bool = False  # stats put the request's value at this level in the name
    metadata: Mapping[str, Any] | None = None  # returned in the answer's dynamic metadata when it passes


@dataclass(frozen=True, slots=True)
class DescriptorTable:
    """The descriptors of one level, indexed the way a request entry looks them up."""

    exact: Mapping[tuple[str, str], DescriptorConfig] = field(default_factory=dict)
    wildcards: Mapping[str, tuple[DescriptorConfig, ...]] = field(default_factory=dict)  # by key
    any_value: Mapping[str, DescriptorConfig] = field(default_factory=dict)  # by key

    def __bool__(self) -> bool:
        return bool(self.exact or self.wildcards or self.any_value)


EMPTY_TABLE = DescriptorTable()


@dataclass(frozen=True)
class RateLimitDomain:
    """A domain's compiled config, and the handler (FQN) whose backend counts its limits."""

    domain: str
    resource: str  # the ratelimitconfig's FQN, or the envoyproxy/ratelimit file(s) it comes from
    handler: str
    descriptors: DescriptorTable


def wildcard_pattern(value: str) -> Regex | None:
    """A value with `*` wildcards as a regular expression matching whole values; None without `*`.

    `*` stands for any text, also none: `/api/*` matches `/api/` and `/api/v1/users`. RE2, because a
    backtracking engine takes time polynomial in the request's value with the number of wildcards
    (`*a*a*a*b` against 500 `a`s: 14 s with Python's re). RegexError for a value too long to compile.
    """
    if "*" not in value:
        return None
    return compile_regex("(?s)" + ".*".join(escape(part) for part in value.split("*")))
