"""Instance values as Prometheus label values (text) and sample values (floats), MIXER.md 7.1.

Label values: a string as it is; an int in decimal; a double in Go's shortest `'f'` form (`0.25`, `1`,
never an exponent); a bool `true`/`false`; an IP address as text; a timestamp in UTC as
`2026-11-20T10:00:00.000000Z`; a duration in Go's form (`1.5s`); a string map as `k=v&k2=v2` sorted by
key. Sample values: int, double, duration (in seconds) and numeric strings; anything else is
`Unconvertible`.

The `*_for(value_type)` functions pick, at build time, the cheapest conversion for a field whose type
the config inferred; the generic ones dispatch on the Python value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from mixerd.adapter import Duration, Timestamp, ValueType, format_go_duration, go_ip_text, utc_micros_text

_NS = 1_000_000_000

LabelFormatter = Callable[[Any], str]
ValueConverter = Callable[[Any], float]

#: Types whose Python value is already the label text.
TEXT_TYPES = frozenset({ValueType.STRING, ValueType.DNS_NAME, ValueType.EMAIL_ADDRESS, ValueType.URI})


class Unconvertible(ValueError):
    """A value that cannot be a sample value; the message says what it was."""


# -- label values -----------------------------------------------------------------------------------


def format_double(value: float) -> str:
    """Go's strconv.FormatFloat(v, 'f', -1, 64): the shortest digits that read back, no exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(float(value))
    if "e" in text:
        text = format(Decimal(text), "f")
    return text[:-2] if text.endswith(".0") else text


def format_timestamp(ns: int) -> str:
    """UTC with six fraction digits and `Z`: `2026-11-20T10:00:00.000000Z`."""
    return utc_micros_text(ns)


def format_map(value: Mapping[str, Any]) -> str:
    """`k=v&k2=v2`, sorted by key."""
    return "&".join(f"{k}={format_label(v)}" for k, v in sorted(value.items()))


def _format_int(value: int) -> str:
    return str(int(value))


def _format_bool(value: bool) -> str:
    return "true" if value else "false"


def format_label(value: Any) -> str:
    """Any instance value as a label value (dispatching on its Python type)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return _format_bool(value)
    if isinstance(value, Timestamp):
        return format_timestamp(value)
    if isinstance(value, Duration):
        return format_go_duration(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, bytes | bytearray):
        return go_ip_text(bytes(value))
    if isinstance(value, Mapping):
        return format_map(value)
    return "" if value is None else str(value)


_LABEL_FORMATTERS: dict[ValueType, LabelFormatter] = {
    ValueType.INT64: _format_int,
    ValueType.DOUBLE: format_double,
    ValueType.BOOL: _format_bool,
    ValueType.TIMESTAMP: format_timestamp,
    ValueType.DURATION: format_go_duration,
    ValueType.IP_ADDRESS: go_ip_text,
    ValueType.STRING_MAP: format_map,
}


def label_formatter_for(value_type: Any) -> LabelFormatter | None:
    """The formatter for a dimension of `value_type`; None when the value is already its text."""
    if value_type in TEXT_TYPES:
        return None
    return _LABEL_FORMATTERS.get(value_type, format_label)


# -- sample values ----------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, Timestamp):
        return "TIMESTAMP"
    if isinstance(value, bytes | bytearray):
        return "IP_ADDRESS"
    if isinstance(value, Mapping):
        return "STRING_MAP"
    return type(value).__name__


def parse_number(text: str) -> float:
    """A numeric string as Go's strconv.ParseFloat reads it (no spaces, no `_` separators)."""
    if isinstance(text, str) and "_" not in text and text == text.strip():
        try:
            return float(text)
        except ValueError:
            pass
    raise Unconvertible(f"the string {text!r} is not a number")


def duration_seconds(value: int) -> float:
    return value / _NS


def to_float(value: Any) -> float:
    """Any instance value as a sample value (dispatching on its Python type)."""
    if isinstance(value, Duration):
        return value / _NS
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool | Timestamp):
        return float(value)
    if isinstance(value, str):
        return parse_number(value)
    if value is None:
        raise Unconvertible("the instance has no value")
    name = _type_name(value)
    shown = format_label(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    article = "an" if name[:1] in "AEIOU" else "a"
    raise Unconvertible(f"{article} {name} value ({shown}) is not a number")


_VALUE_CONVERTERS: dict[ValueType, ValueConverter] = {
    ValueType.INT64: float,
    ValueType.DOUBLE: float,
    ValueType.DURATION: duration_seconds,
    ValueType.STRING: parse_number,
}


def value_converter_for(value_type: Any) -> ValueConverter:
    """The converter for a value of `value_type` (the generic one when the type is not a number's)."""
    return _VALUE_CONVERTERS.get(value_type, to_float)
