"""Go's duration text format (time.ParseDuration / Duration.String), in integer nanoseconds.

Mixer's config, its expression language (a string literal that parses as a duration is a DURATION) and
its CLI all use this format, so it has to match Go exactly, including the bare "0".
"""

from __future__ import annotations

_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_INT64_MAX = (1 << 63) - 1


def parse_go_duration(text: str) -> int:
    """Nanoseconds in `text` (`1h5m`, `300ms`, `-1.5s`, `0`); ValueError as Go would refuse it."""
    s = text
    negative = False
    if s[:1] in ("-", "+"):
        negative = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"time: invalid duration {text!r}")
    total = 0
    while s:
        i = 0
        while i < len(s) and s[i].isascii() and s[i].isdigit():
            i += 1
        whole, s = s[:i], s[i:]
        fraction = ""
        if s.startswith("."):
            j = 1
            while j < len(s) and s[j].isascii() and s[j].isdigit():
                j += 1
            fraction, s = s[1:j], s[j:]
        if not whole and not fraction:
            raise ValueError(f"time: invalid duration {text!r}")
        j = 0
        while j < len(s) and s[j] != "." and not (s[j].isascii() and s[j].isdigit()):
            j += 1
        unit, s = s[:j], s[j:]
        if not unit:
            raise ValueError(f"time: missing unit in duration {text!r}")
        scale = _UNITS.get(unit)
        if scale is None:
            raise ValueError(f"time: unknown unit {unit!r} in duration {text!r}")
        value = int(whole or "0") * scale
        if fraction:
            # Go keeps the fraction exact to the nanosecond, truncating below it.
            value += int(fraction) * scale // 10 ** len(fraction)
        total += value
        if total > _INT64_MAX + (1 if negative else 0):
            raise ValueError(f"time: invalid duration {text!r}")
    return -total if negative else total


def _fraction(value: int, digits: int) -> str:
    """`value` / 10**digits as Go prints it: the integer part, then a fraction without trailing zeros."""
    whole, rest = divmod(value, 10**digits)
    frac = f"{rest:0{digits}d}".rstrip("0") if digits else ""
    return f"{whole}.{frac}" if frac else str(whole)


def format_go_duration(nanos: int) -> str:
    """Go's Duration.String(): `1h5m0.5s`, `300ms`, `1.5µs`, `0s`."""
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    n = abs(nanos)
    if n < 1_000:
        return f"{sign}{n}ns"
    if n < 1_000_000:
        return f"{sign}{_fraction(n, 3)}\u00b5s"
    if n < 1_000_000_000:
        return f"{sign}{_fraction(n, 6)}ms"
    hours, n = divmod(n, 3_600_000_000_000)
    minutes, n = divmod(n, 60_000_000_000)
    text = _fraction(n, 9) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return sign + text
