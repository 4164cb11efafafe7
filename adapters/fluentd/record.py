"""A logentry instance as a Fluentd event: (tag, time, record), as Mixer's fluentd adapter made it.

- tag: the instance's full name, unless its variables have `tag`: then that value is the tag, the
  record gets `name` = the instance's full name, and `tag` is left out of the record;
- time: the instance's `timestamp` (sent as a Fluentd EventTime, with nanoseconds);
- record: the variables, then `severity`. Values: IP addresses as text (`10.0.0.1`), timestamps as RFC
  3339 in UTC (`2026-11-20T10:00:00.5Z`), durations as Go text (`1.5s`) or, with `integerDuration`,
  whole milliseconds (truncated toward zero); string maps as maps; the rest as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mixerd.adapter import Duration, LogEntryInstance, Timestamp, go_ip_text

_NS_PER_MS = 1_000_000


def event(
    instance: LogEntryInstance, ip_keys: frozenset[str], integer_duration: bool
) -> tuple[str, dict[str, Any]]:
    """(tag, record) for one instance; `ip_keys` are the variables whose values are IP addresses."""
    record = {k: value(v, k in ip_keys, integer_duration) for k, v in instance.variables.items()}
    tag = instance.name
    if "tag" in record:
        given = record.pop("tag")
        tag = given if isinstance(given, str) else str(given)
        record["name"] = instance.name
    record["severity"] = instance.severity
    return tag, record


def value(v: Any, is_ip: bool = False, integer_duration: bool = False) -> Any:
    """One variable's value as the record carries it."""
    if isinstance(v, Timestamp):
        return v.isoformat()
    if isinstance(v, Duration):
        if integer_duration:
            ms = abs(int(v)) // _NS_PER_MS
            return -ms if v < 0 else ms
        return str(v)
    if isinstance(v, bytes | bytearray):
        raw = bytes(v)
        # an address as Go's net.IP prints it; `?<hex>` for other bytes in an IP_ADDRESS variable
        return go_ip_text(raw, empty="") if is_ip or len(raw) in (4, 16) else raw
    if isinstance(v, Mapping):
        return {str(k): value(x, False, integer_duration) for k, x in v.items()}
    if v is None or isinstance(v, str | int | float | bool):
        return v
    return str(v)
