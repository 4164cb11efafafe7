"""Attribute flags of `mixerd check` / `mixerd report`: `name=value,...` lists turned into typed values.

The value syntax follows Mixer's test client mixc (MIXER.md 11.4): Go's strconv/time parsing rules,
`b0:b1:...` hex bytes, `k1:v1;k2:v2` string maps, and for untyped `-a` values the type is guessed in
mixc's order. Two additions: `--ip-attributes`, and IP text given for an attribute the manifest declares
IP_ADDRESS is sent as packed bytes, the way proxies send IPs.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..attribute import BUILTIN_MANIFEST, Duration, Timestamp, ValueType

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
# Go's strconv.ParseInt(s, 10, 64) and ParseFloat(s, 64) syntax. Python's int()/float() are laxer
# (surrounding spaces, `1_000`), and a lax guess would turn a string into a number.
_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_FLOAT_SPECIAL_RE = re.compile(r"[+-]?(?:inf|infinity|nan)", re.IGNORECASE)
_HEX_BYTE_RE = re.compile(r"[0-9a-fA-F]+")
# strconv.ParseBool's spellings.
_BOOLS = {
    **dict.fromkeys(("1", "t", "T", "true", "TRUE", "True"), True),
    **dict.fromkeys(("0", "f", "F", "false", "FALSE", "False"), False),
}


class AttributeFlagError(ValueError):
    """A malformed flag value; the message names the flag and the bad item: `-i: 'x=abc': ...`."""


# -- one value of each type -----------------------------------------------------------------------
# Each parser raises ValueError with a message that names the bad value and the expected form.


def parse_string(text: str) -> str:
    return text


def parse_int64(text: str) -> int:
    if _INT_RE.fullmatch(text):
        value = int(text)
        if _INT64_MIN <= value <= _INT64_MAX:
            return value
        raise ValueError(f"{text!r} is out of the int64 range")
    raise ValueError(f"{text!r} is not an int64")


def parse_double(text: str) -> float:
    if _FLOAT_SPECIAL_RE.fullmatch(text):
        return float(text)
    if _FLOAT_RE.fullmatch(text):
        value = float(text)
        if not math.isinf(value):  # Go refuses 1e400 (ErrRange) rather than rounding it to +Inf
            return value
        raise ValueError(f"{text!r} is out of the double range")
    raise ValueError(f"{text!r} is not a double")


def parse_bool(text: str) -> bool:
    try:
        return _BOOLS[text]
    except KeyError:
        raise ValueError(f"{text!r} is not a bool (true or false)") from None


def parse_timestamp(text: str) -> Timestamp:
    try:
        return Timestamp.parse(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp (like 2017-01-01T00:00:00Z)") from None


def parse_duration(text: str) -> Duration:
    try:
        return Duration.parse(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a Go duration (like 10ms or 1h5m)") from None


def parse_bytes(text: str) -> bytes:
    """`0a:ff:1` -> b'\\x0a\\xff\\x01': colon-separated hex bytes (mixc's format)."""
    out = bytearray()
    for segment in text.split(":"):
        if not _HEX_BYTE_RE.fullmatch(segment) or int(segment, 16) > 0xFF:
            raise ValueError(f"{text!r} is not a list of hex bytes (like 0a:ff): bad byte {segment!r}")
        out.append(int(segment, 16))
    return bytes(out)


def parse_string_map(text: str) -> dict[str, str]:
    """`k1:v1;k2:v2` -> {'k1': 'v1', 'k2': 'v2'}; the empty text is the empty map.

    Unlike mixc, a key may start with ':' so that HTTP/2 pseudo-headers work: `:path:/a` is {':path': '/a'}.
    """
    if not text:
        return {}
    out: dict[str, str] = {}
    for pair in text.split(";"):
        colon = pair.find(":", 1)
        if colon < 0:
            raise ValueError(f"{text!r} is not a string map (k1:v1;k2:v2): {pair!r} has no ':'")
        out[pair[:colon]] = pair[colon + 1 :]
    return out


def parse_ip(text: str) -> bytes:
    """IPv4 or IPv6 text -> the 4 or 16 packed bytes that carry an IP_ADDRESS on the wire."""
    try:
        return ipaddress.ip_address(text).packed
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 or IPv6 address") from None


# mixc's order for untyped values (MIXER.md 11.4); the first parser that accepts the text wins.
_GUESS_ORDER: tuple[Callable[[str], Any], ...] = (
    parse_int64,
    parse_double,
    parse_bool,
    parse_timestamp,
    parse_duration,
    parse_bytes,
)


_PARSERS_BY_TYPE: Mapping[ValueType, Callable[[str], Any]] = {
    ValueType.STRING: parse_string,
    ValueType.DNS_NAME: parse_string,
    ValueType.EMAIL_ADDRESS: parse_string,
    ValueType.URI: parse_string,
    ValueType.INT64: parse_int64,
    ValueType.DOUBLE: parse_double,
    ValueType.BOOL: parse_bool,
    ValueType.TIMESTAMP: parse_timestamp,
    ValueType.DURATION: parse_duration,
    ValueType.IP_ADDRESS: parse_ip,
    ValueType.STRING_MAP: parse_string_map,
}


def parse_typed(value_type: ValueType, text: str) -> Any:
    """`text` as a value of `value_type` (the manifest's type of an attribute)."""
    return _PARSERS_BY_TYPE[value_type](text)


def guess_value(text: str) -> Any:
    """The typed value mixc would send for `text`: int64, double, bool, timestamp, duration, bytes,
    string map, else string. (So `t` is a bool and `ab` is one byte: use a typed flag to avoid that.)"""
    for parse in _GUESS_ORDER:
        try:
            return parse(text)
        except ValueError:
            pass
    if text:  # mixc refuses an empty map here, so an empty value stays a string
        try:
            return parse_string_map(text)
        except ValueError:
            pass
    return text


# -- flags ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttributeKind:
    """One attribute flag: its option strings, the value parser, and a help line."""

    name: str
    options: tuple[str, ...]
    parse: Callable[[str], Any]
    help: str
    # mixc's spelling (`--string_attributes`), accepted but not shown in --help.
    mixc_option: str | None = None


ATTRIBUTE_KINDS: tuple[AttributeKind, ...] = (
    AttributeKind("string", ("-s", "--string-attributes"), parse_string, "string attributes: name=value,...",
                  "--string_attributes"),
    AttributeKind("int64", ("-i", "--int64-attributes"), parse_int64, "int64 attributes: name=42,...",
                  "--int64_attributes"),
    AttributeKind("double", ("-d", "--double-attributes"), parse_double, "double attributes: name=1.5,...",
                  "--double_attributes"),
    AttributeKind("bool", ("-b", "--bool-attributes"), parse_bool, "bool attributes: name=true,...",
                  "--bool_attributes"),
    AttributeKind("timestamp", ("-t", "--timestamp-attributes"), parse_timestamp,
                  "timestamp attributes (RFC 3339): name=2017-01-01T00:00:00Z,...", "--timestamp_attributes"),
    AttributeKind("duration", ("--duration-attributes", "--duration"), parse_duration,
                  "duration attributes (Go syntax): name=10ms,...", "--duration_attributes"),
    AttributeKind("bytes", ("--bytes-attributes", "--bytes"), parse_bytes,
                  "bytes attributes (hex bytes): name=0a:00:00:01,...", "--bytes_attributes"),
    AttributeKind("stringmap", ("--stringmap-attributes", "--stringmap"), parse_string_map,
                  "string map attributes: name=k1:v1;k2:v2,...", "--stringmap_attributes"),
    AttributeKind("ip", ("--ip-attributes",), parse_ip,
                  "IP address attributes, sent as 4 or 16 bytes: name=10.0.0.1,..."),
    AttributeKind("any", ("-a", "--attributes"), guess_value,
                  "attributes of guessed type (int64, double, bool, timestamp, duration, bytes, "
                  "string map, else string): name=value,..."),
)  # fmt: skip
KINDS_BY_NAME: Mapping[str, AttributeKind] = {kind.name: kind for kind in ATTRIBUTE_KINDS}


def split_items(flag: str, text: str) -> list[tuple[str, str]]:
    """`a=1,b=x=y` -> [('a', '1'), ('b', 'x=y')]: comma-separated items, each split at its first '='."""
    out = []
    for item in text.split(","):
        name, eq, value = item.partition("=")
        if not eq:
            raise AttributeFlagError(f"{flag}: {item!r}: expected name=value")
        if not name:
            raise AttributeFlagError(f"{flag}: {item!r}: the name before '=' is empty")
        out.append((name, value))
    return out


def parse_attribute_flag(
    flag: str, kind: str, text: str, manifest: Mapping[str, ValueType] = BUILTIN_MANIFEST
) -> dict[str, Any]:
    """The attributes in one flag value, e.g. parse_attribute_flag('-i', 'int64', 'a=1,b=2').

    `flag` is only used in error messages. For string and guessed values, IP text given for an
    attribute that `manifest` declares IP_ADDRESS becomes packed bytes (IPs travel as bytes).
    """
    parse = KINDS_BY_NAME[kind].parse
    out: dict[str, Any] = {}
    for name, value in split_items(flag, text):
        try:
            if kind in ("string", "any") and manifest.get(name) is ValueType.IP_ADDRESS:
                out[name] = _ip_or(parse, value)
            else:
                out[name] = parse(value)
        except ValueError as e:
            raise AttributeFlagError(f"{flag}: '{name}={value}': {e}") from None
    return out


def _ip_or(parse: Callable[[str], Any], value: str) -> Any:
    try:
        return parse_ip(value)
    except ValueError:
        return parse(value)


def parse_quotas(flag: str, text: str) -> dict[str, int]:
    """`-q rq=1,other=5` -> {'rq': 1, 'other': 5}; amounts are int64 and not negative."""
    out: dict[str, int] = {}
    for name, value in split_items(flag, text):
        try:
            amount = parse_int64(value)
        except ValueError as e:
            raise AttributeFlagError(f"{flag}: '{name}={value}': {e}") from None
        if amount < 0:
            raise AttributeFlagError(f"{flag}: '{name}={value}': a quota amount cannot be negative")
        out[name] = amount
    return out
