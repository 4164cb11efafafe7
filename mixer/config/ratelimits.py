"""`ratelimitconfig` resources: rate limit domains in envoyproxy/ratelimit's format, read strictly.

A resource names its `domain`, the `handler` whose backend counts (a handler of an adapter with
`rate_limits`, e.g. memquota or redisquota) and its `descriptors`. Every problem is reported with its
path, spelled as written (envoyproxy/ratelimit's files use snake_case: `rate_limit`, `requests_per_unit`).
Two resources claiming one domain is an error naming both. docs/envoy/ratelimit.md is the reference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..adapter import AdapterInfo, Duration, RateLimit, RateLimitAlgorithm
from ..attribute.godur import parse_go_duration
from ..params import camel
from ..regex import RegexError
from .errors import ConfigError
from .fields import Problem, read_fields, type_name
from .handlers import CompiledHandler
from .ratelimit_model import (
    MAX_REQUESTS_PER_UNIT,
    UNIT_NS,
    UNIT_NUMBERS,
    CurrentLimit,
    DescriptorConfig,
    DescriptorTable,
    LimitPolicy,
    RateLimitDomain,
    wildcard_pattern,
)
from .resources import HANDLER, Resource, resolve_reference, unresolved_reason

_SPEC_FIELDS = ("domain", "handler", "descriptors")
_DESCRIPTOR_FIELDS = (
    "key",
    "value",
    "rate_limit",
    "rate_limits",
    "shadow_mode",
    "share_threshold",
    "descriptors",
)
_LIMIT_FIELDS = (
    "unit",
    "requests_per_unit",
    "unlimited",
    "name",
    "replaces",
    "unit_multiplier",
    "algorithm",
    "bucket_duration",
)
#: envoyproxy/ratelimit descriptor fields mixerd does not take, and why.
_UNSUPPORTED = {
    "detailed_metric": "mixerd's self metrics are per config descriptor, never per request value",
    "value_to_metric": "mixerd's self metrics are per config descriptor, never per request value",
    "quota_mode": "not supported by mixerd; use shadow_mode to count without enforcing",
    "metadata": "not supported by mixerd",
}
_COUNTING = ("unit", "requests_per_unit", "unit_multiplier", "algorithm", "bucket_duration")
_UNITS = ", ".join(u.lower() for u in UNIT_NUMBERS)
_MS = 1_000_000
_MAX_WINDOW = 100 * UNIT_NS["YEAR"]
MAX_BUCKETS = 10_000  # as redisquota: each bucket of a rolling window may be one entry in Redis


@dataclass
class RateLimitContext:
    """What ratelimitconfigs are compiled against; `used` collects the handler FQNs they name."""

    handler_resources: Mapping[str, Resource]  # every handler-role resource, by FQN
    handlers: Mapping[str, CompiledHandler]  # the valid ones
    adapters: Mapping[str, AdapterInfo]
    used: set[str] = field(default_factory=set)


def compile_ratelimits(
    resources: list[Resource], ctx: RateLimitContext, errors: list[ConfigError]
) -> dict[str, RateLimitDomain]:
    """Each resource's domain, by domain name; every problem goes to `errors`."""
    domains: dict[str, RateLimitDomain] = {}
    owners: dict[str, Resource] = {}
    for r in resources:
        problems: list[Problem] = []
        domain = _domain(r, ctx, problems) if r.spec_ok else None
        errors.extend(r.error(path, reason) for path, reason in problems)
        name = r.spec.get("domain") if r.spec_ok else None
        if isinstance(name, str) and name:
            earlier = owners.setdefault(name, r)
            if earlier is not r:
                where = f"{earlier.document.file} (document {earlier.document.number})"
                reason = f"domain {name!r} is also configured by ratelimitconfig {earlier.fqn!r} in {where}"
                errors.append(r.error(".spec.domain", reason))
                continue
        if domain is not None:
            domains[domain.domain] = domain
    return domains


def _domain(r: Resource, ctx: RateLimitContext, problems: list[Problem]) -> RateLimitDomain | None:
    before = len(problems)
    spec = read_fields(r.spec, _SPEC_FIELDS, ".spec", problems)
    name = spec.get("domain")
    if name is None or name == "":
        problems.append((spec.path("domain"), "missing: name the domain Envoy sends (its filter's `domain`)"))
    elif not isinstance(name, str):
        problems.append((spec.path("domain"), f"expected a string, got {type_name(name)}"))
    handler = _handler(r, spec.get("handler"), spec.path("handler"), ctx, problems)
    reader = _Reader(problems)
    table = reader.table(spec.get("descriptors", []), spec.path("descriptors"), "")
    reader.check_replaces()
    if len(problems) > before or handler is None:
        return None
    return RateLimitDomain(str(name), r.fqn, handler, table)


def _handler(r: Resource, ref: Any, path: str, ctx: RateLimitContext, problems: list[Problem]) -> str | None:
    if ref is None or ref == "":
        problems.append((path, "missing: name the handler that counts (memquota or redisquota)"))
        return None
    if not isinstance(ref, str):
        problems.append((path, f"expected a handler name, got {type_name(ref)}"))
        return None
    fqn = resolve_reference(ref, HANDLER, r.namespace, ctx.handler_resources)
    if fqn is None:
        problems.append((path, unresolved_reason(ref, HANDLER, r.namespace, ctx.handler_resources)))
        return None
    handler = ctx.handlers.get(fqn)
    if handler is None:
        return None  # its own problems are reported where it is defined
    if not handler.adapter.rate_limits:
        able = ", ".join(name for name, info in ctx.adapters.items() if info.rate_limits) or "none"
        problems.append(
            (
                path,
                f"handler {fqn!r} (adapter {handler.adapter.name}) cannot count rate limits; "
                f"name a handler of an adapter that can: {able}",
            )
        )
        return None
    ctx.used.add(fqn)
    return fqn


class _Reader:
    """Reads one domain's descriptor tree; remembers limit names for the `replaces` check."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        self.names: set[str] = set()
        self.replaced: list[tuple[str, str]] = []  # (path, name)

    def table(self, raw: Any, path: str, parent_stat: str) -> DescriptorTable:
        if raw is None:
            return DescriptorTable()
        if not isinstance(raw, list):
            self.problems.append((path, f"expected a list of descriptors, got {type_name(raw)}"))
            return DescriptorTable()
        exact: dict[tuple[str, str], DescriptorConfig] = {}
        wildcards: dict[str, list[DescriptorConfig]] = {}
        any_value: dict[str, DescriptorConfig] = {}
        seen: dict[tuple[str, str | None], int] = {}
        for i, item in enumerate(raw):
            here = f"{path}[{i}]"
            descriptor = self.descriptor(item, here, parent_stat)
            if descriptor is None:
                continue
            identity = (descriptor.key, descriptor.value)
            if identity in seen:
                what = f"key {descriptor.key!r}" + (
                    f" and value {descriptor.value!r}" if descriptor.value is not None else " (any value)"
                )
                self.problems.append(
                    (here, f"duplicate descriptor: {what} is also at {path}[{seen[identity]}]")
                )
                continue
            seen[identity] = i
            if descriptor.value is None:
                any_value[descriptor.key] = descriptor
            elif descriptor.pattern is not None:
                wildcards.setdefault(descriptor.key, []).append(descriptor)
            else:
                exact[(descriptor.key, descriptor.value)] = descriptor
        return DescriptorTable(exact, {k: tuple(v) for k, v in wildcards.items()}, any_value)

    def descriptor(self, raw: Any, path: str, parent_stat: str) -> DescriptorConfig | None:
        if not isinstance(raw, Mapping):
            self.problems.append((path, f"expected a mapping with key and rate_limit, got {type_name(raw)}"))
            return None
        before = len(self.problems)
        fields = read_fields(self._supported(raw, path), _DESCRIPTOR_FIELDS, path, self.problems)
        key = fields.get("key")
        if key is None or key == "":
            self.problems.append((fields.path("key"), "missing: the descriptor entry's key"))
        elif not isinstance(key, str):
            self.problems.append((fields.path("key"), f"expected a string, got {type_name(key)}"))
        value = self._value(fields, "value" in fields)
        shadow = self._bool(fields, "shadow_mode")
        share = self._bool(fields, "share_threshold")
        pattern = None
        try:
            pattern = wildcard_pattern(value) if value is not None else None
        except RegexError as e:  # a value of hundreds of kilobytes
            self.problems.append((fields.path("value"), str(e)))
        if share and (value is None or "*" not in value):
            self.problems.append(
                (fields.path("share_threshold"), "applies only to a value with a * wildcard")
            )
        limits = self._limits(fields)
        stat = str(key) if value is None else f"{key}_{value}"
        stat = f"{parent_stat}.{stat}" if parent_stat else stat
        children = self.table(fields.get("descriptors"), fields.path("descriptors"), stat)
        if len(self.problems) > before or not isinstance(key, str):
            return None
        return DescriptorConfig(key, value, limits, shadow, share, children, stat, pattern)

    def _supported(self, raw: Mapping[Any, Any], path: str) -> dict[Any, Any]:
        """`raw` without envoyproxy/ratelimit's fields mixerd does not take (each reported)."""
        out = {}
        for key, value in raw.items():
            name = next((n for n in _UNSUPPORTED if str(key) in (n, camel(n))), None)
            if name is None:
                out[key] = value
            else:
                self.problems.append(
                    (f"{path}.{key}", f"envoyproxy/ratelimit's {name}: {_UNSUPPORTED[name]}")
                )
        return out

    def _value(self, fields: Any, given: bool) -> str | None:
        if not given:
            return None
        value = fields.get("value")
        path = fields.path("value")
        if isinstance(value, bool) or value is None or not isinstance(value, str | int):
            self.problems.append((path, f"expected a string, got {type_name(value)}"))
            return None
        if value == "":
            self.problems.append((path, "must not be empty; leave value out to match any value"))
            return None
        return str(value)

    def _bool(self, fields: Any, name: str) -> bool:
        value = fields.get(name, False)
        if not isinstance(value, bool):
            self.problems.append((fields.path(name), f"expected true or false, got {type_name(value)}"))
            return False
        return value

    def _limits(self, fields: Any) -> tuple[LimitPolicy, ...]:
        """The descriptor's limits: its `rate_limit`, or each of its `rate_limits`."""
        if "rate_limit" in fields and "rate_limits" in fields:
            one, many = (fields.path(n).rsplit(".", 1)[1] for n in ("rate_limit", "rate_limits"))
            reason = f"give either {one} (one limit) or {many} (a list of limits), not both"
            self.problems.append((fields.path("rate_limits"), reason))
            return ()
        if "rate_limit" in fields:
            raw = fields.get("rate_limit")
            if raw is None:
                return ()
            policy = self.limit(raw, fields.path("rate_limit"), allow_unlimited=True)
            return (policy,) if policy is not None else ()
        raw = fields.get("rate_limits")
        if raw is None:
            return ()
        path = fields.path("rate_limits")
        if not isinstance(raw, list) or not raw:
            got = "an empty list" if raw == [] else type_name(raw)
            self.problems.append((path, f"expected a non-empty list of limits, got {got}"))
            return ()
        limits: list[LimitPolicy] = []
        seen: dict[tuple[int, int, int], int] = {}
        for i, item in enumerate(raw):
            policy = self.limit(item, f"{path}[{i}]", allow_unlimited=False)
            if policy is None or policy.limit is None:
                continue
            identity = (policy.limit.window, policy.limit.algorithm, policy.limit.bucket_duration)
            if identity in seen:
                reason = f"counts the same window as {path}[{seen[identity]}]; keep the smaller limit"
                self.problems.append((f"{path}[{i}]", reason))
                continue
            seen[identity] = i
            limits.append(policy)
        return tuple(limits)

    def limit(self, raw: Any, path: str, *, allow_unlimited: bool) -> LimitPolicy | None:
        """One limit (`unlimited: true` too); None with its problems reported."""
        if not isinstance(raw, Mapping):
            self.problems.append(
                (path, f"expected a mapping with unit and requests_per_unit, got {type_name(raw)}")
            )
            return None
        before = len(self.problems)
        fields = read_fields(raw, _LIMIT_FIELDS, path, self.problems)
        name = fields.get("name", "")
        if not isinstance(name, str):
            self.problems.append((fields.path("name"), f"expected a string, got {type_name(name)}"))
            name = ""
        if name:
            self.names.add(name)
        replaces = self._replaces(fields)
        unlimited = fields.get("unlimited", False)
        if not isinstance(unlimited, bool):
            self.problems.append(
                (fields.path("unlimited"), f"expected true or false, got {type_name(unlimited)}")
            )
            return None
        if unlimited:
            if not allow_unlimited:
                reason = "an unlimited descriptor has one rate_limit, not a list"
                self.problems.append((fields.path("unlimited"), reason))
            for other in _COUNTING:
                if other in fields:
                    reason = "unlimited: true counts nothing; leave this field out"
                    self.problems.append((fields.path(other), reason))
            if len(self.problems) > before:
                return None
            return LimitPolicy(None, None, name, frozenset(replaces))
        unit = self._unit(fields)
        count = self._requests(fields)
        multiplier = self._multiplier(fields)
        algorithm = self._algorithm(fields)
        if len(self.problems) > before or unit is None or count is None:
            return None
        window = UNIT_NS[unit] * multiplier
        if window > _MAX_WINDOW:
            self.problems.append((fields.path("unit_multiplier"), "makes a window longer than 100 years"))
            return None
        bucket = self._bucket(fields, algorithm, window)
        if len(self.problems) > before:
            return None
        limit = RateLimit(count, Duration(window), algorithm, Duration(bucket))
        current = CurrentLimit(count, UNIT_NUMBERS[unit], name)
        return LimitPolicy(current, limit, name, frozenset(replaces))

    def _replaces(self, fields: Any) -> list[str]:
        raw = fields.get("replaces", [])
        path = fields.path("replaces")
        if not isinstance(raw, list):
            self.problems.append((path, f"expected a list of {{name: ...}}, got {type_name(raw)}"))
            return []
        names = []
        for i, item in enumerate(raw):
            here = f"{path}[{i}]"
            if not isinstance(item, Mapping):
                self.problems.append((here, f"expected a mapping with name, got {type_name(item)}"))
                continue
            entry = read_fields(item, ("name",), here, self.problems)
            name = entry.get("name")
            if not isinstance(name, str) or not name:
                got = (
                    "missing: the name of the limit it replaces"
                    if not name
                    else f"expected a string, got {type_name(name)}"
                )
                self.problems.append((entry.path("name"), got))
                continue
            names.append(name)
            self.replaced.append((entry.path("name"), name))
        return names

    def _unit(self, fields: Any) -> str | None:
        raw = fields.get("unit")
        if raw is None:
            self.problems.append((fields.path("unit"), f"missing: one of {_UNITS}"))
            return None
        unit = raw.upper() if isinstance(raw, str) else None
        if unit not in UNIT_NUMBERS:
            self.problems.append((fields.path("unit"), f"expected one of {_UNITS}, got {_text(raw)}"))
            return None
        return unit

    def _requests(self, fields: Any) -> int | None:
        raw = fields.get("requests_per_unit")
        path = fields.path("requests_per_unit")
        if raw is None:
            self.problems.append(
                (path, "missing: how many requests each unit allows (0 blocks every request)")
            )
            return None
        if isinstance(raw, bool) or not isinstance(raw, int):
            self.problems.append((path, f"expected a whole number, got {_text(raw)}"))
            return None
        if not 0 <= raw <= MAX_REQUESTS_PER_UNIT:
            self.problems.append((path, f"must be between 0 and {MAX_REQUESTS_PER_UNIT}, got {raw}"))
            return None
        return raw

    def _multiplier(self, fields: Any) -> int:
        raw = fields.get("unit_multiplier", 1)
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
            path = fields.path("unit_multiplier")
            self.problems.append((path, f"expected a whole number of units, at least 1, got {_text(raw)}"))
            return 1
        return raw

    def _algorithm(self, fields: Any) -> RateLimitAlgorithm:
        raw = fields.get("algorithm", "FIXED_WINDOW")
        name = raw.upper() if isinstance(raw, str) else None
        if name not in RateLimitAlgorithm.__members__:
            choices = ", ".join(RateLimitAlgorithm.__members__)
            self.problems.append((fields.path("algorithm"), f"expected one of {choices}, got {_text(raw)}"))
            return RateLimitAlgorithm.FIXED_WINDOW
        return RateLimitAlgorithm[name]

    def _bucket(self, fields: Any, algorithm: RateLimitAlgorithm, window: int) -> int:
        path = fields.path("bucket_duration")
        if algorithm != RateLimitAlgorithm.ROLLING_WINDOW:
            if "bucket_duration" in fields:
                self.problems.append((path, "applies only to algorithm: ROLLING_WINDOW"))
            return 0
        raw = fields.get("bucket_duration")
        if raw is None:
            return max(_MS, window // 10)
        bucket = _duration(raw)
        if bucket is None:
            self.problems.append((path, f"expected a duration such as '1s' or '100ms', got {_text(raw)}"))
            return 0
        if bucket < _MS or bucket >= window:
            reason = (
                f"must be at least 1ms and less than the window ({Duration(window)}), got {Duration(bucket)}"
            )
            self.problems.append((path, reason))
        elif math.ceil(window / bucket) > MAX_BUCKETS:
            reason = (
                f"makes {math.ceil(window / bucket)} buckets per window; at most {MAX_BUCKETS} are allowed"
            )
            self.problems.append((path, reason))
        return bucket

    def check_replaces(self) -> None:
        """Every name a limit replaces is some limit's name in this domain (a typo would do nothing)."""
        for path, name in self.replaced:
            if name not in self.names:
                known = ", ".join(repr(n) for n in sorted(self.names)) or "none"
                self.problems.append(
                    (path, f"no limit of this domain is named {name!r} (named limits: {known})")
                )


def _duration(raw: Any) -> int | None:
    if isinstance(raw, str):
        try:
            return parse_go_duration(raw.strip())
        except ValueError:
            return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw * 1_000_000_000  # a bare number is seconds, as in handler params
    return None


def _text(value: Any) -> str:
    return (
        repr(value)
        if isinstance(value, str | int | float) and not isinstance(value, bool)
        else type_name(value)
    )
