"""CompressedAttributes <-> attribute values, and ReportRequest batches (MIXER.md 2).

Word indices: index >= 0 names GLOBAL_WORDS[index]; index < 0 names words[-index - 1] of the message
dictionary. Attribute names, string values and string-map keys and values are all words.

Decoding is eager and straight-line: one pass over the nine typed maps with no per-entry validation.
Invalid input (an index outside both dictionaries, or a name in two maps) is rare, so it is detected
cheaply (an exception, or a count that comes out short) and then explained by a slower second pass.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..api.mixer.v1 import attributes_pb2, mixer_pb2
from .dictionary import GLOBAL_INDEX, GLOBAL_WORDS
from .values import Duration, Timestamp

CompressedAttributes = attributes_pb2.CompressedAttributes
ReportRequest = mixer_pb2.ReportRequest

_GLOBAL: Sequence[str] = GLOBAL_WORDS
_MAPS = ("strings", "int64s", "doubles", "bools", "timestamps", "durations", "bytes", "string_maps")


class DecodeError(ValueError):
    """A CompressedAttributes message that cannot be turned into a bag; the message says where."""


class ReportTooLarge(ValueError):
    """A ReportRequest whose bags together hold more attribute values than the caller's limit."""


class DictionaryMismatch(ValueError):
    """The caller uses more global words than this server knows (gRPC INTERNAL, as Mixer answers)."""

    def __init__(self, caller_count: int) -> None:
        super().__init__(
            "inconsistent global dictionary versions used: "
            f"mixer knows {len(_GLOBAL)} words, caller knows {caller_count}"
        )


def check_global_word_count(count: int) -> None:
    """Raise DictionaryMismatch when a caller's global_word_count exceeds ours."""
    if count > len(_GLOBAL):
        raise DictionaryMismatch(count)


def message_words(words: Sequence[str]) -> list[str]:
    """A message dictionary as a list: index i < 0 names words[~i] (~i == -i - 1)."""
    return list(words)


# -- decoding -----------------------------------------------------------------------------------------


def decode_attributes(msg: CompressedAttributes, words: list[str] | None = None) -> dict[str, Any]:
    """The attributes of `msg` as name -> value (see mixerd.attribute.values for the Python types).

    `words` overrides the message's own dictionary (ReportRequest.default_words, made once per request
    with `message_words`). DecodeError names the bad index or the duplicated attribute.
    """
    m = list(msg.words) if words is None else words
    g = _GLOBAL
    out: dict[str, Any] = {}
    # Measured (bench/decode.py): with upb, `for k in c: c[k]` beats `c.items()`, and testing a map's
    # length beats iterating an empty one; a bag rarely uses all eight maps.
    try:
        c: Any = msg.strings
        for k in c:
            v = c[k]
            out[g[k] if k >= 0 else m[~k]] = g[v] if v >= 0 else m[~v]
        total = len(c)
        c = msg.int64s
        if c:
            total += len(c)
            for k in c:
                out[g[k] if k >= 0 else m[~k]] = c[k]
        c = msg.doubles
        if c:
            total += len(c)
            for k in c:
                out[g[k] if k >= 0 else m[~k]] = c[k]
        c = msg.bools
        if c:
            total += len(c)
            for k in c:
                out[g[k] if k >= 0 else m[~k]] = c[k]
        c = msg.timestamps
        if c:
            total += len(c)
            for k in c:
                v = c[k]
                s, n = v.seconds, v.nanos
                if not (_MIN_TIMESTAMP <= s <= _MAX_TIMESTAMP and 0 <= n < 1_000_000_000):
                    raise DecodeError(_out_of_range(g[k] if k >= 0 else m[~k], "timestamp", s, n))
                out[g[k] if k >= 0 else m[~k]] = Timestamp(s * 1_000_000_000 + n)
        c = msg.durations
        if c:
            total += len(c)
            for k in c:
                v = c[k]
                s, n = v.seconds, v.nanos
                if not (-_MAX_DURATION <= s <= _MAX_DURATION and -1_000_000_000 < n < 1_000_000_000):
                    raise DecodeError(_out_of_range(g[k] if k >= 0 else m[~k], "duration", s, n))
                out[g[k] if k >= 0 else m[~k]] = Duration(s * 1_000_000_000 + n)
        c = msg.bytes
        if c:
            total += len(c)
            for k in c:
                out[g[k] if k >= 0 else m[~k]] = c[k]
        c = msg.string_maps
        if c:
            total += len(c)
            for k in c:
                entries = c[k].entries
                value = {}
                for ek in entries:
                    ev = entries[ek]
                    value[g[ek] if ek >= 0 else m[~ek]] = g[ev] if ev >= 0 else m[~ev]
                out[g[k] if k >= 0 else m[~k]] = value
    except IndexError:
        raise DecodeError(_explain_bad_index(msg, m)) from None
    if len(out) != total:
        raise DecodeError(_explain_duplicate(msg, m))
    return out


#: google.protobuf.Timestamp's range, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z, and Duration's,
#: +-10000 years: values outside them are not valid protobuf, and no adapter could represent them.
_MIN_TIMESTAMP, _MAX_TIMESTAMP = -62_135_596_800, 253_402_300_799
_MAX_DURATION = 315_576_000_000


def _out_of_range(name: str, kind: str, seconds: int, nanos: int) -> str:
    limits = "0001-01-01..9999-12-31" if kind == "timestamp" else "+-10000 years"
    return f"attribute {name!r}: {kind} {seconds}s {nanos}ns is outside protobuf's range ({limits})"


def _defined(index: int, m: list[str]) -> bool:
    return 0 <= index < len(_GLOBAL) or 0 <= ~index < len(m)


def _explain_bad_index(msg: CompressedAttributes, m: list[str]) -> str:
    """The first undefined index in `msg`, named with where it was used."""
    for field in _MAPS:
        for k, v in getattr(msg, field).items():
            if not _defined(k, m):
                return _undefined(k, m, f"as an attribute name in {field}")
            name = _GLOBAL[k] if k >= 0 else m[~k]
            if field == "strings" and not _defined(v, m):
                return _undefined(v, m, f"as the value of attribute {name!r}")
            if field == "string_maps":
                for ek, ev in v.entries.items():
                    if not _defined(ek, m):
                        return _undefined(ek, m, f"as a key in string map {name!r}")
                    if not _defined(ev, m):
                        return _undefined(ev, m, f"as a value in string map {name!r}")
    return "attribute index is not defined in the available dictionaries"  # pragma: no cover


def _undefined(index: int, m: list[str], where: str) -> str:
    return (
        f"attribute index {index} is not defined in the available dictionaries ({where}; "
        f"{len(_GLOBAL)} global words, {len(m)} message words)"
    )


def _explain_duplicate(msg: CompressedAttributes, m: list[str]) -> str:
    seen: dict[str, str] = {}
    for field in _MAPS:
        for k in getattr(msg, field):
            name = _GLOBAL[k] if k >= 0 else m[~k]
            if name in seen:
                return f"duplicate attribute {name!r} (in {seen[name]} and {field})"
            seen[name] = field
    return "duplicate attribute"  # pragma: no cover


def decode_report(
    request: ReportRequest, max_values: int | None = None
) -> Iterator[tuple[int, dict[str, Any] | DecodeError]]:
    """Each bag of a ReportRequest as (position, values) in order, or (position, DecodeError).

    Elements with no words of their own use `default_words`. With DELTA_ENCODING (the default) each
    element is applied on top of the bag before it; a bag that fails to decode is skipped and the next
    one builds on the last good bag. With INDEPENDENT_ENCODING each element stands alone.

    `max_values` bounds the attribute values of all bags together; ReportTooLarge is raised before the
    bag that would pass it is built. Without it, DELTA_ENCODING turns a small message into a huge
    amount of memory: one bag of 20,000 attributes and 2,000 empty ones after it (342 KB on the wire)
    are 40 million dictionary entries (830 MB).
    """
    defaults = message_words(request.default_words)
    delta = request.repeated_attributes_semantics == ReportRequest.DELTA_ENCODING
    running: dict[str, Any] = {}
    budget = max_values
    for position, element in enumerate(request.attributes):
        try:
            values = decode_attributes(element, None if element.words else defaults)
        except DecodeError as e:
            yield position, e
            continue
        if budget is not None:
            budget -= len(running) + len(values) if delta else len(values)  # delta: at most that many
            if budget < 0:
                raise ReportTooLarge(
                    f"the report's bags hold more than {max_values} attribute values in all (with "
                    "DELTA_ENCODING each bag also counts those it carries over); send fewer bags per Report"
                )
        if delta:
            running = {**running, **values}
            yield position, running
        else:
            yield position, values


# -- encoding -----------------------------------------------------------------------------------------

_ABSENT: Any = object()


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same type (True == 1 in Python, but they are different attributes)."""
    return type(a) is type(b) and a == b


class WordEncoder:
    """Assigns word indices: a global index when the word is among the caller's first
    `global_word_count` global words, otherwise a slot in the message dictionary (added once)."""

    __slots__ = ("_global_limit", "_slots", "words")

    def __init__(self, global_word_count: int = len(_GLOBAL)) -> None:
        self._global_limit = global_word_count
        self._slots: dict[str, int] = {}
        self.words: list[str] = []

    def index(self, word: str) -> int:
        g = GLOBAL_INDEX.get(word)
        if g is not None and g < self._global_limit:
            return g
        return self.message_index(word)

    def message_index(self, word: str) -> int:
        """The word's slot in the message dictionary (always < 0), added if new."""
        slot = self._slots.get(word)
        if slot is None:
            slot = self._slots[word] = -len(self.words) - 1
            self.words.append(word)
        return slot


def encode_attributes(
    values: Mapping[str, Any],
    global_word_count: int = len(_GLOBAL),
    *,
    encoder: WordEncoder | None = None,
) -> CompressedAttributes:
    """A CompressedAttributes message for `values`, typed by their Python types.

    str -> strings; bool -> bools; Timestamp or aware datetime -> timestamps; Duration or timedelta ->
    durations; int -> int64s; float -> doubles; bytes or an ipaddress address -> bytes; a mapping ->
    string_maps. With a shared `encoder` the words go into encoder.words (ReportRequest.default_words)
    and the message's own `words` stays empty; otherwise they go into the message.
    """
    own = encoder is None
    enc = WordEncoder(global_word_count) if encoder is None else encoder
    msg = CompressedAttributes()
    for name, value in values.items():
        key = enc.index(name)
        _put(msg, key, value, enc, name)
    if own:
        msg.words.extend(enc.words)
    return msg


def _put(msg: CompressedAttributes, key: int, value: Any, enc: WordEncoder, name: str) -> None:
    if isinstance(value, bool):
        msg.bools[key] = value
    elif isinstance(value, str):
        msg.strings[key] = enc.index(value)
    elif isinstance(value, Timestamp):
        ts = msg.timestamps[key]
        ts.seconds, ts.nanos = value.seconds, value.nanos
    elif isinstance(value, Duration):
        d = msg.durations[key]
        d.seconds, d.nanos = value.seconds, value.nanos
    elif isinstance(value, int):
        msg.int64s[key] = value
    elif isinstance(value, float):
        msg.doubles[key] = value
    elif isinstance(value, bytes | bytearray):
        msg.bytes[key] = bytes(value)
    elif isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        msg.bytes[key] = value.packed
    elif isinstance(value, _dt.datetime):
        _put(msg, key, Timestamp.from_datetime(value), enc, name)
    elif isinstance(value, _dt.timedelta):
        _put(msg, key, Duration.from_timedelta(value), enc, name)
    elif isinstance(value, Mapping):
        entries = msg.string_maps[key].entries
        for k, v in value.items():
            entries[enc.index(str(k))] = enc.index(str(v))
    else:
        raise TypeError(f"attribute {name!r}: cannot encode a value of type {type(value).__name__}")


def encode_report(
    bags: Sequence[Mapping[str, Any]],
    global_word_count: int = len(_GLOBAL),
    *,
    delta: bool = False,
) -> ReportRequest:
    """A ReportRequest for `bags` sharing one `default_words` dictionary, as Istio proxies send it.

    With `delta`, every bag after the first carries only the attributes that changed (set or
    overwritten) since the one before; DELTA_ENCODING cannot express a deletion, so a bag that drops an
    attribute of the previous one raises ValueError.
    """
    enc = WordEncoder(global_word_count)
    request = ReportRequest(global_word_count=global_word_count)
    request.repeated_attributes_semantics = (
        ReportRequest.DELTA_ENCODING if delta else ReportRequest.INDEPENDENT_ENCODING
    )
    previous: Mapping[str, Any] = {}
    for position, bag in enumerate(bags):
        changes: Mapping[str, Any] = bag
        if delta and position:
            dropped = previous.keys() - bag.keys()
            if dropped:
                raise ValueError(f"bag {position} drops {sorted(dropped)}: delta encoding cannot delete")
            changes = {k: v for k, v in bag.items() if not _same(previous.get(k, _ABSENT), v)}
        request.attributes.append(encode_attributes(changes, global_word_count, encoder=enc))
        previous = bag
    request.default_words.extend(enc.words)
    return request
