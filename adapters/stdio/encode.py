"""One output line per entry, in the format Mixer's stdio adapter wrote (its zap encoders).

JSON (`outputAsJson: true`):
    {"level":"info","time":"2026-11-20T10:00:00.000000Z","instance":"accesslog.logentry.istio-system","a":1}
Console (`outputAsJson: false`): time, level and instance separated by tabs, then the fields as one JSON
object after another tab (left out when there are none):
    2026-11-20T10:00:00.000000Z<TAB>info<TAB>accesslog.logentry.istio-system<TAB>{"a":1}

Level names are zap's lower-case ones: `info`, `warn`, `error`.
"""

from __future__ import annotations

import base64
import functools
import json
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from mixerd.adapter import Duration, Timestamp, format_go_duration, go_ip_text, utc_micros_text

from .params import Level

LEVEL_NAMES = {Level.INFO: "info", Level.WARNING: "warn", Level.ERROR: "error"}


def format_time(ns: int) -> str:
    """UTC with exactly six fraction digits and `Z`, as Mixer's stdio printed every time."""
    return utc_micros_text(ns)


def _float_text(value: float) -> str:
    """Go's strconv 'f' with the shortest digits, as zap writes floats: never an exponent."""
    if math.isnan(value):
        return '"NaN"'
    if math.isinf(value):
        return '"+Inf"' if value > 0 else '"-Inf"'
    text = repr(value)
    if "e" in text:
        text = format(Decimal(text), "f")
    return text[:-2] if text.endswith(".0") else text


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _key(name: str) -> str:
    # Keys include string-map keys the caller sent: only short ones are remembered.
    return _cached_key(name) if len(name) <= 256 else _string(name) + ":"


@functools.lru_cache(maxsize=4096)
def _cached_key(name: str) -> str:
    return _string(name) + ":"


def value_json(value: Any, is_ip: bool = False) -> str:
    """One value as JSON text. Timestamps and durations print as text; IP bytes as an address."""
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Timestamp):
        return '"' + format_time(value) + '"'
    if isinstance(value, Duration):
        return '"' + format_go_duration(value) + '"'
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
        if is_ip or len(raw) in (4, 16):
            return _string(go_ip_text(raw, empty=""))  # `?<hex>` for other bytes in an IP field
        return _string(base64.b64encode(raw).decode("ascii"))
    if isinstance(value, Mapping):
        return "{" + ",".join(_key(str(k)) + value_json(v) for k, v in sorted(value.items())) + "}"
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "[" + ",".join(value_json(v) for v in value) + "]"
    return _string(str(value))


def fields_json(fields: Iterable[tuple[str, Any]], ip_keys: frozenset[str]) -> str:
    """`"k":v` pairs joined by commas, in the order given."""
    return ",".join(_key(k) + value_json(v, k in ip_keys) for k, v in fields)


def line(as_json: bool, level: Level, time_ns: int, instance: str, fields: str) -> str:
    """One finished output line (with its newline) from already-encoded fields."""
    if as_json:
        head = f'{{"level":"{LEVEL_NAMES[level]}","time":"{format_time(time_ns)}","instance":'
        head += _string(instance)
        return f"{head},{fields}}}\n" if fields else head + "}\n"
    head = f"{format_time(time_ns)}\t{LEVEL_NAMES[level]}\t{instance}"
    return f"{head}\t{{{fields}}}\n" if fields else head + "\n"
