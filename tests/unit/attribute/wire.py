"""A tiny protobuf wire-format writer for the attribute tests.

It is written from the protobuf encoding rules and the field numbers in MIXER.md 1.3, 1.5 and 1.6, and
deliberately does not touch the generated code: golden bytes built here are parsed by the generated
classes, so a wrong field number or type on either side shows up as a test failure.

Only what the tests need: varints (two's complement for negative int64/int32/enum), zigzag sint32,
fixed64 doubles, length-delimited strings/bytes/messages and map entries (key = field 1, value = field 2).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

# Wire types.
VARINT = 0
I64 = 1
LEN = 2

# istio.mixer.v1.CompressedAttributes (MIXER.md 1.6).
WORDS = 1
STRINGS = 2
INT64S = 3
DOUBLES = 4
BOOLS = 5
TIMESTAMPS = 6
DURATIONS = 7
BYTES = 8
STRING_MAPS = 9
# istio.mixer.v1.StringMap.
STRING_MAP_ENTRIES = 1

# istio.mixer.v1.ReportRequest (MIXER.md 1.5).
REPORT_ATTRIBUTES = 1
REPORT_DEFAULT_WORDS = 2
REPORT_GLOBAL_WORD_COUNT = 3
REPORT_SEMANTICS = 4
DELTA_ENCODING = 0
INDEPENDENT_ENCODING = 1

# istio.mixer.v1.ReferencedAttributes and its AttributeMatch (MIXER.md 1.3).
REF_WORDS = 1
REF_MATCHES = 2
MATCH_NAME = 1
MATCH_CONDITION = 2
MATCH_REGEX = 3
MATCH_MAP_KEY = 4
ABSENCE = 1
EXACT = 2

# google.protobuf.Timestamp / Duration.
SECONDS = 1
NANOS = 2

_U64 = 1 << 64


# -- primitives ---------------------------------------------------------------------------------------


def varint(n: int) -> bytes:
    """Base-128 varint; a negative number is written as its 64-bit two's complement (10 bytes)."""
    if n < 0:
        n += _U64
    if not 0 <= n < _U64:
        raise ValueError(f"{n} does not fit in 64 bits")
    out = bytearray()
    while n > 0x7F:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out)


def zigzag32(n: int) -> int:
    """sint32's zigzag mapping: 0 -> 0, -1 -> 1, 1 -> 2, -2 -> 3, ..."""
    if not -(1 << 31) <= n < 1 << 31:
        raise ValueError(f"{n} does not fit in sint32")
    return 2 * n if n >= 0 else -2 * n - 1


def key(field: int, wire_type: int) -> bytes:
    return varint(field << 3 | wire_type)


def varint_field(field: int, n: int) -> bytes:
    """int64, int32, uint32, bool and enum fields."""
    return key(field, VARINT) + varint(int(n))


def sint32_field(field: int, n: int) -> bytes:
    return key(field, VARINT) + varint(zigzag32(n))


def double_field(field: int, x: float) -> bytes:
    return key(field, I64) + struct.pack("<d", x)


def len_field(field: int, data: bytes) -> bytes:
    """A length-delimited field: bytes, or an already-encoded message body."""
    return key(field, LEN) + varint(len(data)) + data


def string_field(field: int, text: str) -> bytes:
    return len_field(field, text.encode("utf-8"))


def map_entry(field: int, key_bytes: bytes, value_bytes: bytes) -> bytes:
    """One entry of a map field: an embedded message holding the key (field 1) and the value (field 2)."""
    return len_field(field, key_bytes + value_bytes)


# -- google.protobuf.Timestamp / Duration --------------------------------------------------------------


def seconds_nanos(seconds: int, nanos: int) -> bytes:
    """The body of a Timestamp or Duration (proto3: zero fields are left out)."""
    out = b""
    if seconds:
        out += varint_field(SECONDS, seconds)
    if nanos:
        out += varint_field(NANOS, nanos)
    return out


# -- CompressedAttributes parts (concatenate them to make a message body) --------------------------------


def words(*texts: str) -> bytes:
    return b"".join(string_field(WORDS, t) for t in texts)


def string(name: int, value: int) -> bytes:
    return map_entry(STRINGS, sint32_field(1, name), sint32_field(2, value))


def int64(name: int, value: int) -> bytes:
    return map_entry(INT64S, sint32_field(1, name), varint_field(2, value))


def double(name: int, value: float) -> bytes:
    return map_entry(DOUBLES, sint32_field(1, name), double_field(2, value))


def boolean(name: int, value: bool) -> bytes:
    return map_entry(BOOLS, sint32_field(1, name), varint_field(2, value))


def timestamp(name: int, seconds: int, nanos: int = 0) -> bytes:
    return map_entry(TIMESTAMPS, sint32_field(1, name), len_field(2, seconds_nanos(seconds, nanos)))


def duration(name: int, seconds: int, nanos: int = 0) -> bytes:
    return map_entry(DURATIONS, sint32_field(1, name), len_field(2, seconds_nanos(seconds, nanos)))


def raw_bytes(name: int, value: bytes) -> bytes:
    return map_entry(BYTES, sint32_field(1, name), len_field(2, value))


def string_map(name: int, entries: Iterable[tuple[int, int]]) -> bytes:
    body = b"".join(map_entry(STRING_MAP_ENTRIES, sint32_field(1, k), sint32_field(2, v)) for k, v in entries)
    return map_entry(STRING_MAPS, sint32_field(1, name), len_field(2, body))


# -- ReportRequest ----------------------------------------------------------------------------------------


def report(
    attributes: Iterable[bytes],
    default_words: Iterable[str] = (),
    global_word_count: int | None = None,
    semantics: int | None = None,
) -> bytes:
    """A ReportRequest; `attributes` are CompressedAttributes bodies. None leaves a field off the wire."""
    out = b"".join(len_field(REPORT_ATTRIBUTES, a) for a in attributes)
    out += b"".join(string_field(REPORT_DEFAULT_WORDS, w) for w in default_words)
    if global_word_count is not None:
        out += varint_field(REPORT_GLOBAL_WORD_COUNT, global_word_count)
    if semantics is not None:
        out += varint_field(REPORT_SEMANTICS, semantics)
    return out


# -- ReferencedAttributes -------------------------------------------------------------------------------


def attribute_match(name: int, condition: int, map_key: int = 0) -> bytes:
    """An AttributeMatch body (proto3: a zero name or map_key is left out)."""
    out = sint32_field(MATCH_NAME, name) if name else b""
    out += varint_field(MATCH_CONDITION, condition) if condition else b""
    out += sint32_field(MATCH_MAP_KEY, map_key) if map_key else b""
    return out


def referenced(word_list: Iterable[str], matches: Iterable[bytes]) -> bytes:
    out = b"".join(string_field(REF_WORDS, w) for w in word_list)
    return out + b"".join(len_field(REF_MATCHES, m) for m in matches)
