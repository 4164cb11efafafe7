"""Attribute value types and the Python values that carry them.

| ValueType | Python value in a bag |
|---|---|
| STRING, DNS_NAME, EMAIL_ADDRESS, URI | str |
| INT64 | int |
| DOUBLE | float |
| BOOL | bool |
| TIMESTAMP | Timestamp (int nanoseconds since the Unix epoch) |
| DURATION | Duration (int nanoseconds) |
| IP_ADDRESS | bytes (4 or 16 raw bytes, as on the wire) |
| STRING_MAP | dict[str, str] |

Timestamps and durations are int subclasses holding nanoseconds, so they are exact (Go's time has
nanoseconds, datetime only microseconds), cheap to build on the hot path, and compare natively.
"""

from __future__ import annotations

import datetime as _dt
import functools
import ipaddress
import re
import socket
from enum import IntEnum

_NS = 1_000_000_000
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_ZONE_OFFSET = re.compile(r"[+-][0-9]{2}:[0-9]{2}")


class ValueType(IntEnum):
    """istio.policy.v1beta1.ValueType, with the same numbers."""

    VALUE_TYPE_UNSPECIFIED = 0
    STRING = 1
    INT64 = 2
    DOUBLE = 3
    BOOL = 4
    TIMESTAMP = 5
    IP_ADDRESS = 6
    EMAIL_ADDRESS = 7
    URI = 8
    DNS_NAME = 9
    DURATION = 10
    STRING_MAP = 11


class Timestamp(int):
    """A point in time: nanoseconds since 1970-01-01T00:00:00Z."""

    __slots__ = ()

    @classmethod
    def from_parts(cls, seconds: int, nanos: int) -> Timestamp:
        return cls(seconds * _NS + nanos)

    @classmethod
    def from_datetime(cls, value: _dt.datetime) -> Timestamp:
        if value.tzinfo is None:
            raise ValueError(f"timestamp {value.isoformat()} has no time zone")
        delta = value - _EPOCH
        return cls((delta.days * 86_400 + delta.seconds) * _NS + delta.microseconds * 1000)

    @classmethod
    def parse(cls, text: str) -> Timestamp:
        """Parse RFC 3339 (`2017-01-01T00:00:00Z`, `...T00:00:00.123456789+02:00`), keeping nanoseconds."""
        date_part, sep, rest = text.partition("T")
        if not sep:
            date_part, sep, rest = text.partition("t")
        if not sep:
            raise ValueError(f"{text!r} is not an RFC 3339 timestamp")
        zone_at = max(rest.rfind("+"), rest.rfind("-"), rest.upper().rfind("Z"))
        if zone_at <= 0:
            raise ValueError(f"{text!r} is not an RFC 3339 timestamp: no time zone")
        clock, zone = rest[:zone_at], rest[zone_at:]
        if zone not in ("Z", "z") and not _ZONE_OFFSET.fullmatch(zone):
            raise ValueError(f"{text!r} is not an RFC 3339 timestamp: bad time zone")
        clock, dot, fraction = clock.partition(".")
        if dot and not (fraction.isascii() and fraction.isdigit() and len(fraction) <= 9):
            raise ValueError(f"{text!r} is not an RFC 3339 timestamp: bad fraction")
        try:
            base = _dt.datetime.fromisoformat(f"{date_part}T{clock}{'+00:00' if zone in 'zZ' else zone}")
        except ValueError as e:
            raise ValueError(f"{text!r} is not an RFC 3339 timestamp: {e}") from None
        if len(date_part) != 10 or len(clock) != 8:
            raise ValueError(f"{text!r} is not an RFC 3339 timestamp")
        return cls(cls.from_datetime(base) + int(fraction.ljust(9, "0") or 0))

    @property
    def seconds(self) -> int:
        return int(self) // _NS

    @property
    def nanos(self) -> int:
        return int(self) % _NS

    def to_datetime(self) -> _dt.datetime:
        """As an aware UTC datetime (nanoseconds below a microsecond are dropped)."""
        return _EPOCH + _dt.timedelta(seconds=self.seconds, microseconds=self.nanos // 1000)

    def isoformat(self) -> str:
        """RFC 3339 in UTC with as many fraction digits as needed, like Go's time.RFC3339Nano."""
        # isoformat, not strftime: strftime("%Y") does not pad years before 1000 to four digits.
        base = (_EPOCH + _dt.timedelta(seconds=self.seconds)).replace(tzinfo=None).isoformat("T", "seconds")
        fraction = f"{self.nanos:09d}".rstrip("0")
        return f"{base}.{fraction}Z" if fraction else f"{base}Z"

    def __repr__(self) -> str:
        return f"Timestamp({self.isoformat()!r})"


class Duration(int):
    """A length of time in nanoseconds."""

    __slots__ = ()

    @classmethod
    def from_parts(cls, seconds: int, nanos: int) -> Duration:
        return cls(seconds * _NS + nanos)

    @classmethod
    def from_timedelta(cls, value: _dt.timedelta) -> Duration:
        return cls((value.days * 86_400 + value.seconds) * _NS + value.microseconds * 1000)

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse a Go duration string (`300ms`, `1h5m`, `-1.5s`, `0`)."""
        from .godur import parse_go_duration

        return cls(parse_go_duration(text))

    @property
    def seconds(self) -> int:
        """Whole seconds, truncated toward zero (google.protobuf.Duration's rule)."""
        return -(-int(self) // _NS) if self < 0 else int(self) // _NS

    @property
    def nanos(self) -> int:
        """The nanoseconds beyond `seconds`, with the same sign (google.protobuf.Duration's rule)."""
        return int(self) - self.seconds * _NS

    def total_seconds(self) -> float:
        return int(self) / _NS

    def to_timedelta(self) -> _dt.timedelta:
        return _dt.timedelta(microseconds=int(self) // 1000)

    def __str__(self) -> str:
        from .godur import format_go_duration

        return format_go_duration(int(self))

    def __repr__(self) -> str:
        return f"Duration({str(self)!r})"


def ip_text(raw: bytes) -> str:
    """An IP_ADDRESS value (4 or 16 raw bytes) as Go's net.IP prints it: dotted for IPv4 and for an
    IPv4-mapped IPv6 address, colon text otherwise. ValueError for any other length (callers that
    print whatever they get choose their own text for that)."""
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, bytes(raw))  # the common case, faster than ipaddress
    if len(raw) == 16:
        address = ipaddress.IPv6Address(bytes(raw))
        return str(address.ipv4_mapped or address)
    raise ValueError(f"{len(raw)} bytes are not an IP address")


def go_ip_text(raw: bytes, *, empty: str = "<nil>") -> str:
    """Any bytes an IP_ADDRESS field may hold, as Go's net.IP.String() prints them: `ip_text` for 4 or 16
    bytes, `?` and the hex digits for another length, and `<nil>` (or `empty`) for none."""
    if len(raw) in (4, 16):
        return ip_text(raw)
    return "?" + bytes(raw).hex() if raw else empty


def parse_ip(text: str) -> bytes | None:
    """An IP address in text (dotted IPv4, or IPv6 with an optional %zone, which stays host-local) as an
    IP_ADDRESS value: 4 or 16 raw bytes; None when it is not one (a NUL or any other stray byte too)."""
    try:
        if ":" not in text:
            return socket.inet_pton(socket.AF_INET, text)
        return socket.inet_pton(socket.AF_INET6, text.partition("%")[0])
    except (OSError, ValueError):  # ValueError: an embedded NUL, which inet_pton refuses that way
        return None


@functools.lru_cache(maxsize=1024)
def _utc_second_text(seconds: int) -> str:
    t = _dt.datetime(1970, 1, 1) + _dt.timedelta(seconds=seconds)
    # Not strftime: it does not pad years before 1000 to four digits.
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def utc_micros_text(ns: int) -> str:
    """A time as UTC with exactly six fraction digits and `Z` (`2026-11-20T10:00:00.000000Z`), the form
    Mixer's stdio and prometheus adapters printed."""
    seconds, nanos = divmod(int(ns), _NS)
    return f"{_utc_second_text(seconds)}.{nanos // 1000:06d}Z"
