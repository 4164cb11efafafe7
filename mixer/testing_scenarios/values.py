"""Attribute values from plain YAML, typed by the attribute manifest; and values back to plain data.

A scenario writes attributes as plain YAML (`source.ip: 10.0.0.1`, `request.headers: {x-user: bob}`,
`response.duration: 10ms`) and the manifest says what each one is, the way a proxy knows its
attributes' types:

| manifest type | YAML | sent as |
|---|---|---|
| STRING, DNS_NAME, EMAIL_ADDRESS, URI | a string (numbers are turned into their text) | strings |
| INT64 / DOUBLE / BOOL | a number / a number / true or false | int64s / doubles / bools |
| TIMESTAMP | RFC 3339 text (`2020-01-01T00:00:00Z`) | timestamps |
| DURATION | Go duration text (`10ms`, `1m30s`) | durations |
| IP_ADDRESS | IPv4 or IPv6 text | bytes (4 or 16) |
| STRING_MAP | a mapping (values turned into text) | string_maps |

An attribute the manifest does not declare is typed by its YAML value (string, integer, float,
boolean, timestamp, or mapping as a string map).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

from ..attribute import Duration, Timestamp, ValueType
from ..attribute.typed import text_value, timestamp_value, typed_value
from ..attribute.values import ip_text


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the place in it."""


def _guess(raw: Any) -> Any:
    if isinstance(raw, bool | int | float | str):
        return raw
    if isinstance(raw, _dt.datetime):
        return timestamp_value(raw)
    if isinstance(raw, Mapping):
        return {str(k): text_value(v, lenient=True) for k, v in raw.items()}
    raise ValueError(f"cannot send {raw!r} as an attribute value")


def typed_bag(raw: Any, manifest: Mapping[str, ValueType], where: str) -> dict[str, Any]:
    """The attributes of one bag, typed by `manifest` (see the module docstring)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where}: expected a mapping of attribute name -> value, got {raw!r}")
    out: dict[str, Any] = {}
    for name, value in raw.items():
        value_type = manifest.get(str(name))
        try:
            out[str(name)] = (
                _guess(value) if value_type is None else typed_value(value_type, value, lenient=True)
            )
        except ValueError as e:
            declared = f" (declared {value_type.name})" if value_type is not None else ""
            raise ScenarioError(f"{where}.{name}{declared}: {e}") from None
    return out


def plain(value: Any, inner: Callable[[Any], Any] | None = None) -> Any:
    """`value` as plain YAML-able data: IP bytes as text, timestamps and durations as their text,
    dataclasses (template instances) as mappings of their fields."""
    again = inner or plain
    if isinstance(value, Timestamp):
        return value.isoformat()
    if isinstance(value, Duration):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, bytes | bytearray):
        if len(value) in (4, 16):  # as Go's net.IP prints it: ip("1.2.3.4") (16 bytes) is 1.2.3.4
            return ip_text(bytes(value))
        return ":".join(f"{b:02x}" for b in value)
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): again(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [again(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: again(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return repr(value)
