"""Attribute values for `POST /debug/explain`: JSON typed by the attribute manifest in force, and any value
shown back as JSON with its secrets masked.

A request's attributes are a JSON object, name -> value; each name must be in the manifest, and its
value is read as the manifest's type says (so `mixerd check --explain` can send what its flags typed):

| manifest type | JSON |
|---|---|
| STRING, DNS_NAME, EMAIL_ADDRESS, URI | a string |
| INT64 | an integer (within int64) |
| DOUBLE | a number |
| BOOL | true or false |
| TIMESTAMP | RFC 3339 text (`2020-01-01T00:00:00Z`) |
| DURATION | Go duration text (`10ms`, `1m30s`) |
| IP_ADDRESS | IPv4 or IPv6 text |
| STRING_MAP | an object of strings |

Anything else is `BadRequest`, whose message names the attribute, its declared type and what came.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

from ...attribute import Duration, Timestamp, ValueType
from ...attribute.typed import kind, typed_value
from ...attribute.values import go_ip_text
from .redact import MASK, is_secret_name, redact


class BadRequest(ValueError):
    """An explain request that cannot be read; the message says where and why (answered with 400)."""


def typed_attributes(
    raw: Any, manifest: Mapping[str, ValueType], where: str = "attributes"
) -> dict[str, Any]:
    """The bag values of `raw` (a JSON object), typed by `manifest` (see the module docstring)."""
    if not isinstance(raw, Mapping):
        raise BadRequest(f"{where}: expected an object of attribute name -> value, got {kind(raw)}")
    out: dict[str, Any] = {}
    for name, value in raw.items():
        declared = manifest.get(name)
        if declared is None:
            raise BadRequest(
                f"{where}.{name}: no such attribute in the manifest in force "
                "(declare it in an attributemanifest)"
            )
        try:
            out[name] = typed_value(declared, value)
        except ValueError as e:
            raise BadRequest(f"{where}.{name} ({declared.name}): {e}") from None
    return out


def shown(value: Any, name: str = "") -> Any:
    """`value` (an attribute, an instance field, a handler's answer) as JSON, with secrets masked: the
    value of a name that says secret (`authorization`, `x-api-key`, ...) and a password in a URL.
    Timestamps and durations are their text, IP addresses dotted or colon text, dataclasses objects."""
    if name and is_secret_name(name) and value not in (None, "", {}):
        return MASK
    if isinstance(value, Timestamp):
        return value.isoformat()
    if isinstance(value, Duration):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, str):
        return redact(value) if "://" in value else value
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, bytes | bytearray):
        return go_ip_text(bytes(value), empty="")
    if isinstance(value, Mapping):
        return {str(k): shown(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [shown(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: shown(getattr(value, f.name), f.name) for f in dataclasses.fields(value)}
    return repr(value)
