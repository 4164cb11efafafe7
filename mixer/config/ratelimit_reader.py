"""One rate limit domain's descriptor tree, read strictly in envoyproxy/ratelimit's format.

Shared by both sources of domains: `ratelimitconfig` resources (ratelimits.py) and envoyproxy/ratelimit's
own files (ratelimit_files.py). Every problem is a (path, reason) pair with the path spelled as written
(envoyproxy/ratelimit's files use snake_case: `rate_limit`, `requests_per_unit`; lowerCamel is taken
too). Where envoyproxy/ratelimit's loader accepts a file, this reader does as well, except where
docs/envoy/ratelimit.md ("Differences") says it is stricter on purpose.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Collection, Mapping
from typing import Any

from ..adapter import Duration, RateLimit, RateLimitAlgorithm
from ..attribute.godur import parse_go_duration
from ..regex import RegexError
from .fields import Fields, Problem, read_fields, type_name
from .ratelimit_model import (
    MAX_REQUESTS_PER_UNIT,
    UNIT_NS,
    UNIT_NUMBERS,
    CurrentLimit,
    DescriptorConfig,
    DescriptorTable,
    LimitPolicy,
    wildcard_pattern,
)

DESCRIPTOR_FIELDS = (
    "key",
    "value",
    "rate_limit",
    "rate_limits",
    "shadow_mode",
    "quota_mode",
    "detailed_metric",
    "value_to_metric",
    "share_threshold",
    "metadata",
    "descriptors",
)
LIMIT_FIELDS = (
    "unit",
    "requests_per_unit",
    "unlimited",
    "name",
    "replaces",
    "unit_multiplier",
    "algorithm",
    "bucket_duration",
)
#: Fields `unlimited: true` cannot have. (envoyproxy/ratelimit refuses `unit` and ignores
#: `requests_per_unit`; so does mixerd.)
_COUNTING = ("unit", "unit_multiplier", "algorithm", "bucket_duration")
_UNITS = ", ".join(u.lower() for u in UNIT_NUMBERS)
_MS = 1_000_000
_MAX_WINDOW = 100 * UNIT_NS["YEAR"]
MAX_BUCKETS = 10_000  # as redisquota: each bucket of a rolling window may be one entry in Redis
_MAX_METADATA_DEPTH = 32


class DescriptorReader:
    """Reads descriptor trees into `problems`; remembers limit names for the `replaces` check."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        self.names: set[str] = set()
        self.replaced: list[tuple[str, str]] = []  # (path, name)

    def table(self, raw: Any, path: str, parent_stat: str) -> DescriptorTable:
        """The descriptors of one level (`raw`, a list), indexed for lookup."""
        level = Level()
        self.add_level(level, raw, path, parent_stat)
        return level.table()

    def add_level(self, level: Level, raw: Any, path: str, parent_stat: str, file: str = "") -> None:
        """Add the descriptors of `raw` (a list, at `path` in `file`) to `level`; a second descriptor
        with the key and value of one already there is a problem."""
        if raw is None:
            return
        if not isinstance(raw, list):
            self.problems.append((path, f"expected a list of descriptors, got {type_name(raw)}"))
            return
        for i, item in enumerate(raw):
            here = f"{path}[{i}]"
            descriptor = self.descriptor(item, here, parent_stat)
            if descriptor is None:
                continue
            earlier = level.add(descriptor, file, here)
            if earlier is not None:
                where = earlier[1] if earlier[0] == file else f"{earlier[0]} {earlier[1]}"
                what = describe(descriptor.key, descriptor.value)
                self.problems.append((here, f"duplicate descriptor: {what} is also at {where}"))

    def descriptor(self, raw: Any, path: str, parent_stat: str) -> DescriptorConfig | None:
        if not isinstance(raw, Mapping):
            self.problems.append((path, f"expected a mapping with key and rate_limit, got {type_name(raw)}"))
            return None
        before = len(self.problems)
        fields = read_fields(raw, DESCRIPTOR_FIELDS, path, self.problems)
        key = fields.get("key")
        if key is None or key == "":
            self.problems.append((fields.path("key"), "missing: the descriptor entry's key"))
        elif not isinstance(key, str):
            self.problems.append((fields.path("key"), f"expected a string, got {type_name(key)}"))
        value = self._value(fields)
        shadow = self._bool(fields, "shadow_mode")
        quota = self._bool(fields, "quota_mode")
        detailed = self._bool(fields, "detailed_metric")
        to_metric = self._bool(fields, "value_to_metric")
        share = self._bool(fields, "share_threshold")
        pattern = None
        try:
            pattern = wildcard_pattern(value) if value is not None else None
        except RegexError as e:  # a value of hundreds of kilobytes
            self.problems.append((fields.path("value"), str(e)))
        if share and (value is None or "*" not in value):
            reason = "applies only to a value with a * wildcard"
            self.problems.append((fields.path("share_threshold"), reason))
        metadata = self._metadata(fields)
        limits = self._limits(fields)
        stat = str(key) if value is None else f"{key}_{value}"
        stat = f"{parent_stat}.{stat}" if parent_stat else stat
        children = self.table(fields.get("descriptors"), fields.path("descriptors"), stat)
        if len(self.problems) > before or not isinstance(key, str):
            return None
        return DescriptorConfig(
            key,
            value,
            limits,
            shadow,
            share,
            children,
            stat,
            pattern,
            quota,
            detailed,
            to_metric,
            metadata,
        )

    def _value(self, fields: Fields) -> str | None:
        """The descriptor's value; None (any value) when absent, null or empty, as envoyproxy/ratelimit."""
        value = fields.get("value")
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.problems.append((fields.path("value"), f"expected a string, got {type_name(value)}"))
            return None
        return str(value)

    def _bool(self, fields: Fields, name: str) -> bool:
        value = fields.get(name, False)
        if not isinstance(value, bool):
            self.problems.append((fields.path(name), f"expected true or false, got {type_name(value)}"))
            return False
        return value

    def _metadata(self, fields: Fields) -> Mapping[str, Any] | None:
        """`metadata` as a protobuf Struct can hold it (string keys; numbers, strings, booleans, nulls,
        lists and mappings); None when absent or empty."""
        raw = fields.get("metadata")
        path = fields.path("metadata")
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            self.problems.append((path, f"expected a mapping, got {type_name(raw)}"))
            return None
        before = len(self.problems)
        value = _struct_value(raw, path, self.problems, 0)
        if len(self.problems) > before or not value:
            return None
        return value  # type: ignore[no-any-return]

    def _limits(self, fields: Fields) -> tuple[LimitPolicy, ...]:
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
        fields = read_fields(raw, LIMIT_FIELDS, path, self.problems)
        name = fields.get("name", "")
        if not isinstance(name, str):
            self.problems.append((fields.path("name"), f"expected a string, got {type_name(name)}"))
            name = ""
        if name:
            self.names.add(name)
        replaces = self._replaces(fields, name)
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
        count = self._requests(fields, path)
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

    def _replaces(self, fields: Fields, own_name: str) -> list[str]:
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
            if name == own_name:
                # envoyproxy/ratelimit refuses it too: the limit would apply, then drop itself
                reason = f"a limit cannot replace itself (its name is {name!r})"
                self.problems.append((entry.path("name"), reason))
                continue
            names.append(name)
            self.replaced.append((entry.path("name"), name))
        return names

    def _unit(self, fields: Fields) -> str | None:
        raw = fields.get("unit")
        if raw is None:
            self.problems.append((fields.path("unit"), f"missing: one of {_UNITS}"))
            return None
        unit = raw.upper() if isinstance(raw, str) else None
        if unit not in UNIT_NUMBERS:
            self.problems.append((fields.path("unit"), f"expected one of {_UNITS}, got {_text(raw)}"))
            return None
        return unit

    def _requests(self, fields: Fields, limit_path: str) -> int | None:
        raw = fields.get("requests_per_unit")
        path = fields.path("requests_per_unit")
        if raw is None:
            # named as envoyproxy/ratelimit's files spell it, when it is not written at all
            where = path if "requests_per_unit" in fields else f"{limit_path}.requests_per_unit"
            self.problems.append(
                (where, "missing: how many requests each unit allows (0 blocks every request)")
            )
            return None
        if isinstance(raw, bool) or not isinstance(raw, int):
            self.problems.append((path, f"expected a whole number, got {_text(raw)}"))
            return None
        if not 0 <= raw <= MAX_REQUESTS_PER_UNIT:
            self.problems.append((path, f"must be between 0 and {MAX_REQUESTS_PER_UNIT}, got {raw}"))
            return None
        return raw

    def _multiplier(self, fields: Fields) -> int:
        raw = fields.get("unit_multiplier", 1)
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
            path = fields.path("unit_multiplier")
            self.problems.append((path, f"expected a whole number of units, at least 1, got {_text(raw)}"))
            return 1
        return raw

    def _algorithm(self, fields: Fields) -> RateLimitAlgorithm:
        raw = fields.get("algorithm", "FIXED_WINDOW")
        name = raw.upper() if isinstance(raw, str) else None
        if name not in RateLimitAlgorithm.__members__:
            choices = ", ".join(RateLimitAlgorithm.__members__)
            self.problems.append((fields.path("algorithm"), f"expected one of {choices}, got {_text(raw)}"))
            return RateLimitAlgorithm.FIXED_WINDOW
        return RateLimitAlgorithm[name]

    def _bucket(self, fields: Fields, algorithm: RateLimitAlgorithm, window: int) -> int:
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

    def check_replaces(self, names: Collection[str]) -> None:
        """Every name a limit replaces is among `names`, the limit names of its domain (a typo would
        silently do nothing: envoyproxy/ratelimit does not check, mixerd does)."""
        for path, name in self.replaced:
            if name not in names:
                known = ", ".join(repr(n) for n in sorted(names)) or "none"
                self.problems.append(
                    (path, f"no limit of this domain is named {name!r} (named limits: {known})")
                )


class Level:
    """The descriptors of one level as they are added (from one list, or several files' lists)."""

    def __init__(self) -> None:
        self._exact: dict[tuple[str, str], DescriptorConfig] = {}
        self._wildcards: dict[str, list[DescriptorConfig]] = {}
        self._any_value: dict[str, DescriptorConfig] = {}
        self._seen: dict[tuple[str, str | None], tuple[str, str]] = {}  # identity -> (file, path)

    def add(self, descriptor: DescriptorConfig, file: str, path: str) -> tuple[str, str] | None:
        """Add `descriptor`; when one with its key and value is there already, (file, path) of that one."""
        identity = (descriptor.key, descriptor.value)
        earlier = self._seen.get(identity)
        if earlier is not None:
            return earlier
        self._seen[identity] = (file, path)
        if descriptor.value is None:
            self._any_value[descriptor.key] = descriptor
        elif descriptor.pattern is not None:
            self._wildcards.setdefault(descriptor.key, []).append(descriptor)  # in the order added
        else:
            self._exact[(descriptor.key, descriptor.value)] = descriptor
        return None

    def table(self) -> DescriptorTable:
        wildcards = {k: tuple(v) for k, v in self._wildcards.items()}
        return DescriptorTable(dict(self._exact), wildcards, dict(self._any_value))


def describe(key: str, value: str | None) -> str:
    """`key 'k' and value 'v'`, or `key 'k' (any value)`: a descriptor's identity in a message."""
    return f"key {key!r}" + (f" and value {value!r}" if value is not None else " (any value)")


def _struct_value(raw: Any, path: str, problems: list[Problem], depth: int) -> Any:
    """`raw` as protobuf Struct values take it (dates as text, as envoyproxy/ratelimit's YAML reader
    gives them), or None with a problem."""
    if depth > _MAX_METADATA_DEPTH:
        problems.append((path, f"nested more than {_MAX_METADATA_DEPTH} levels deep"))
        return None
    if raw is None or isinstance(raw, str | bool | int | float):
        return raw
    if isinstance(raw, datetime.date):
        return raw.isoformat()
    if isinstance(raw, list):
        return [_struct_value(v, f"{path}[{i}]", problems, depth + 1) for i, v in enumerate(raw)]
    if isinstance(raw, Mapping):
        return {str(k): _struct_value(v, f"{path}.{k}", problems, depth + 1) for k, v in raw.items()}
    problems.append((path, f"cannot go into a protobuf Struct: {type_name(raw)}"))
    return None


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
