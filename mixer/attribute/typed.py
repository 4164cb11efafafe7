"""Plain data (JSON, YAML) as attribute values of a declared manifest type.

What `POST /debug/explain` reads (strict JSON: each type from its JSON form) and what scenario files
read (YAML, `lenient`: a number where text is declared is its text, and YAML's own timestamps are
taken). Either way the answer is what a proxy would have sent, or ValueError saying what was expected
and what came:

| manifest type | plain value |
|---|---|
| STRING, DNS_NAME, EMAIL_ADDRESS, URI | a string (lenient: a number too, as its text) |
| INT64 | an integer within int64 |
| DOUBLE | a number |
| BOOL | true or false |
| TIMESTAMP | RFC 3339 text (`2020-01-01T00:00:00Z`; lenient: a YAML timestamp too) |
| DURATION | Go duration text (`10ms`, `1m30s`) |
| IP_ADDRESS | IPv4 or IPv6 text (sent as 4 or 16 bytes) |
| STRING_MAP | an object of strings (lenient: values turned into text) |
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

from .values import Duration, Timestamp, ValueType, parse_ip

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
TEXT_TYPES = (ValueType.STRING, ValueType.DNS_NAME, ValueType.EMAIL_ADDRESS, ValueType.URI)


def typed_value(declared: ValueType, value: Any, *, lenient: bool = False) -> Any:
    """`value` as an attribute value of type `declared` (see the module docstring)."""
    if declared in TEXT_TYPES:
        return text_value(value, lenient)
    if declared is ValueType.INT64:
        if isinstance(value, int) and not isinstance(value, bool):
            if _INT64_MIN <= value <= _INT64_MAX:
                return value
            raise ValueError(f"{value} is out of the int64 range")
        raise ValueError(f"expected an integer, got {kind(value)}")
    if declared is ValueType.DOUBLE:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ValueError(f"expected a number, got {kind(value)}")
    if declared is ValueType.BOOL:
        if isinstance(value, bool):
            return value
        raise ValueError(f"expected true or false, got {kind(value)}")
    if declared is ValueType.TIMESTAMP:
        return timestamp_value(value, lenient)
    if declared is ValueType.DURATION:
        if isinstance(value, str):
            try:
                return Duration.parse(value)
            except ValueError:
                raise ValueError(f'{value!r} is not a duration such as "10ms" or "1m30s"') from None
        raise ValueError(f'expected a duration such as "10ms", got {kind(value)}')
    if declared is ValueType.IP_ADDRESS:
        packed = parse_ip(value) if isinstance(value, str) else None
        if packed is not None:
            return packed
        raise ValueError(f"expected an IPv4 or IPv6 address, got {kind(value)}")
    if declared is ValueType.STRING_MAP:
        if isinstance(value, Mapping):
            out = {}
            for key, item in value.items():
                try:
                    out[str(key)] = text_value(item, lenient)
                except ValueError as e:
                    raise ValueError(f"[{key!r}]: {e}") from None
            return out
        raise ValueError(f"expected an object of strings, got {kind(value)}")
    raise ValueError(f"attributes of type {declared.name} cannot be given")


def timestamp_value(value: Any, lenient: bool = True) -> Timestamp:
    """RFC 3339 text (lenient: or a datetime, as YAML reads an unquoted timestamp) as a Timestamp."""
    if lenient and isinstance(value, _dt.datetime):
        return Timestamp.from_datetime(value if value.tzinfo else value.replace(tzinfo=_dt.UTC))
    if isinstance(value, str):
        return Timestamp.parse(value)
    raise ValueError(f'expected an RFC 3339 timestamp such as "2020-01-01T00:00:00Z", got {kind(value)}')


def text_value(value: Any, lenient: bool = False) -> str:
    """A string (lenient: or a number, as its text)."""
    if isinstance(value, str):
        return value
    if lenient and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"expected a string, got {kind(value)}")


def kind(value: Any) -> str:
    """What a plain value is, for messages: its type and, when short, itself."""
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "an array"
    text = repr(value) if isinstance(value, str) else str(value).lower()
    name = kinds.get(type(value), type(value).__name__)
    return f"{name} {text}" if len(text) <= 60 else name
