"""Fixtures for the expression-language tests: the fixed test manifest and YAML value conversion.

The conformance table (tests/data/lang/conformance.yaml) names attributes from `MANIFEST` only. Input
values in the table are plain YAML and are converted by the declared type of each attribute
(`to_value`); expected results are converted the same way by the result type.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

import pytest

from mixerd.attribute import Duration, Timestamp, ValueType

S = ValueType.STRING
I = ValueType.INT64  # noqa: E741
D = ValueType.DOUBLE
B = ValueType.BOOL
T = ValueType.TIMESTAMP
DUR = ValueType.DURATION
IP = ValueType.IP_ADDRESS
M = ValueType.STRING_MAP
DNS = ValueType.DNS_NAME
EMAIL = ValueType.EMAIL_ADDRESS
URI = ValueType.URI

#: The manifest every conformance case compiles against. Names are valid Go identifier chains without
#: Go keywords, except `a.type`, which is declared so a case can show that it still cannot be named.
MANIFEST: Mapping[str, ValueType] = {
    # INT64
    "ai": I,
    "bi": I,
    "ci": I,
    # DOUBLE
    "ad": D,
    "bd": D,
    # BOOL
    "ab": B,
    "bb": B,
    "cb": B,
    # STRING
    "as": S,
    "bs": S,
    "cs": S,
    "ds": S,
    "x_y": S,
    # TIMESTAMP
    "ats": T,
    "bts": T,
    # DURATION
    "adur": DUR,
    "bdur": DUR,
    # IP_ADDRESS
    "aip": IP,
    "bip": IP,
    # STRING_MAP
    "asm": M,
    "bsm": M,
    # DNS_NAME / EMAIL_ADDRESS / URI
    "adns": DNS,
    "bdns": DNS,
    "aemail": EMAIL,
    "bemail": EMAIL,
    "auri": URI,
    "buri": URI,
    # dotted names (the namespace is flat)
    "a.b.c": S,
    "a.b.d": I,
    "a.type": S,
    "request.headers": M,
    "request.path": S,
    "request.size": I,
    "source.ip": IP,
    "source.labels": M,
    "destination.service.host": S,
    "response.code": I,
    "response.duration": DUR,
    "context.time": T,
    "connection.mtls": B,
}


def _type(kind: ValueType | str) -> ValueType:
    return kind if isinstance(kind, ValueType) else ValueType[kind]


def to_value(kind: ValueType | str, raw: Any) -> Any:
    """The bag value of type `kind` for the YAML value `raw` (strict: a table typo fails loudly)."""
    kind = _type(kind)
    if kind in (S, DNS, EMAIL, URI):
        if not isinstance(raw, str):
            raise TypeError(f"{kind.name} value must be a YAML string, got {raw!r}")
        return raw
    if kind is I:
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise TypeError(f"INT64 value must be a YAML int, got {raw!r}")
        return raw
    if kind is D:
        if not isinstance(raw, (int, float)) or isinstance(raw, bool):
            raise TypeError(f"DOUBLE value must be a YAML number, got {raw!r}")
        return float(raw)
    if kind is B:
        if not isinstance(raw, bool):
            raise TypeError(f"BOOL value must be a YAML bool, got {raw!r}")
        return raw
    if kind is T:
        return Timestamp.parse(raw)
    if kind is DUR:
        return Duration.parse(raw)
    if kind is IP:
        return ipaddress.ip_address(raw).packed
    if kind is M:
        if not isinstance(raw, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
        ):
            raise TypeError(f"STRING_MAP value must be a mapping of strings, got {raw!r}")
        return dict(raw)
    raise ValueError(f"no conversion for {kind.name}")


def bag_values(attrs: Mapping[str, Any] | None, raw: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Bag contents: `attrs` converted by the manifest type of each name, plus `raw` values as they are."""
    values: dict[str, Any] = {}
    for name, value in (attrs or {}).items():
        if name not in MANIFEST:
            raise KeyError(f"attribute {name!r} is not in the test manifest")
        values[name] = to_value(MANIFEST[name], value)
    values.update(raw or {})
    return values


@pytest.fixture(scope="session")
def lang_manifest() -> Mapping[str, ValueType]:
    """The fixed attribute manifest of the conformance table."""
    return MANIFEST


@pytest.fixture(scope="session")
def lang_bag_values():
    """`bag_values(attrs, raw)`: a case's inputs as bag values."""
    return bag_values


@pytest.fixture(scope="session")
def lang_to_value():
    """`to_value(kind, raw)`: one YAML value as the Python value of `kind`."""
    return to_value
