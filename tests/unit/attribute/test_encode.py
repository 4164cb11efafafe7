"""encode_attributes: Python types -> wire maps, word assignment, and property tests (MIXER.md 2.1, 2.3)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re

import attribute_wire as wire
import pytest
from google.protobuf.message import DecodeError as ProtobufDecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixerd.attribute import (
    GLOBAL_WORDS,
    CompressedAttributes,
    DecodeError,
    Duration,
    Timestamp,
    WordEncoder,
    decode_attributes,
    encode_attributes,
)

INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)
NS = 1_000_000_000
MAPS = ("strings", "int64s", "doubles", "bools", "timestamps", "durations", "bytes", "string_maps")


def carrier(msg: CompressedAttributes) -> dict[str, str]:
    """Which typed map each attribute travels in, by name."""
    words = list(msg.words)
    out = {}
    for field in MAPS:
        for k in getattr(msg, field):
            out[GLOBAL_WORDS[k] if k >= 0 else words[~k]] = field
    return out


def test_each_python_type_goes_to_its_map():
    msg = encode_attributes(
        {
            "a.str": "x",
            "a.int": 7,
            "a.float": 1.5,
            "a.bool": True,
            "a.ts": Timestamp(1),
            "a.dur": Duration(1),
            "a.bytes": b"\x01\x02\x03\x04",
            "a.bytearray": bytearray(b"\x01"),
            "a.ipv4": ipaddress.ip_address("10.0.0.1"),
            "a.ipv6": ipaddress.ip_address("::1"),
            "a.datetime": dt.datetime(2017, 1, 1, tzinfo=dt.UTC),
            "a.timedelta": dt.timedelta(milliseconds=1),
            "a.map": {"k": "v"},
        }
    )
    assert carrier(msg) == {
        "a.str": "strings",
        "a.int": "int64s",
        "a.float": "doubles",
        "a.bool": "bools",
        "a.ts": "timestamps",
        "a.dur": "durations",
        "a.bytes": "bytes",
        "a.bytearray": "bytes",
        "a.ipv4": "bytes",
        "a.ipv6": "bytes",
        "a.datetime": "timestamps",
        "a.timedelta": "durations",
        "a.map": "string_maps",
    }
    got = decode_attributes(msg)
    assert got["a.ipv4"] == bytes([10, 0, 0, 1])
    assert got["a.ipv6"] == bytes(15) + b"\x01"
    assert got["a.datetime"] == 1_483_228_800 * NS
    assert type(got["a.datetime"]) is Timestamp
    assert got["a.timedelta"] == 1_000_000
    assert type(got["a.timedelta"]) is Duration
    assert got["a.bytearray"] == b"\x01"


def test_timestamp_and_duration_wire_parts():
    """Timestamp nanos are always >= 0; Duration nanos share the sign of seconds (protobuf rules)."""
    msg = encode_attributes(
        {"request.time": Timestamp(-500_000_000), "response.duration": Duration(-1_500_000_000)}, 222
    )
    assert msg.SerializeToString() == wire.timestamp(24, -1, 500_000_000) + wire.duration(
        29, -1, -500_000_000
    )


def test_int64_extremes():
    body = encode_attributes({"a.max": INT64_MAX, "a.min": INT64_MIN}, 0).SerializeToString()
    assert body == wire.words("a.max", "a.min") + wire.int64(-1, INT64_MAX) + wire.int64(-2, INT64_MIN)


def test_int_outside_int64_is_refused():
    with pytest.raises((ValueError, TypeError)):
        encode_attributes({"a.big": INT64_MAX + 1})


@pytest.mark.parametrize("value", [None, [1], (1,), object(), 1j])
def test_unsupported_value_type_names_the_attribute(value):
    with pytest.raises(TypeError, match=r"'custom\.attr'"):
        encode_attributes({"custom.attr": value})


def test_a_word_is_added_to_the_message_dictionary_once():
    msg = encode_attributes({"custom.a": "same", "custom.b": "same", "custom.m": {"same": "same"}}, 222)
    assert list(msg.words) == ["custom.a", "same", "custom.b", "custom.m"]
    assert dict(msg.strings) == {-1: -2, -3: -2}
    assert dict(msg.string_maps[-4].entries) == {-2: -2}


@pytest.mark.parametrize("count", [0, 1, 31, 32, 111, 221, 222])
def test_global_index_only_below_the_callers_count(count):
    bag = {w: w for w in GLOBAL_WORDS}
    msg = encode_attributes(bag, count)
    assert all(k < count for k in msg.strings if k >= 0)
    assert all(v < count for v in msg.strings.values() if v >= 0)
    assert list(msg.words) == list(GLOBAL_WORDS[count:])
    assert decode_attributes(msg) == bag


def test_shared_encoder_keeps_words_out_of_the_message():
    enc = WordEncoder(222)
    first = encode_attributes({"custom.a": "x"}, encoder=enc)
    second = encode_attributes({"custom.b": "x", "custom.a": "y"}, encoder=enc)
    assert list(first.words) == list(second.words) == []
    assert enc.words == ["custom.a", "x", "custom.b", "y"]
    assert decode_attributes(second, enc.words) == {"custom.b": "x", "custom.a": "y"}


def test_word_encoder():
    enc = WordEncoder(100)
    assert enc.index("source.ip") == 0
    assert enc.index("'200'") == 94
    assert enc.index("'0'") == -1  # global index 111 is beyond this client's 100 words
    assert enc.index("new") == -2
    assert enc.index("'0'") == -1
    assert enc.words == ["'0'", "new"]
    assert WordEncoder().index("context.proxy_version") == 221


# -- property: any bag survives encode -> bytes -> parse -> decode --------------------------------------

_words = st.sampled_from(GLOBAL_WORDS)
_text = st.one_of(st.text(max_size=8), _words)
_timestamps = st.builds(
    Timestamp, st.integers(min_value=-62_135_596_800 * NS, max_value=253_402_300_799 * NS)
)
_values = st.one_of(
    _text,
    st.integers(min_value=INT64_MIN, max_value=INT64_MAX),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    _timestamps,
    st.builds(Duration, st.integers(min_value=INT64_MIN, max_value=INT64_MAX)),
    st.binary(min_size=4, max_size=4),
    st.binary(min_size=16, max_size=16),
    st.dictionaries(_text, _text, max_size=3),
)
_bags = st.dictionaries(_text, _values, max_size=8)


def _types(bag: dict) -> dict:
    return {k: type(v) for k, v in bag.items()}


def _all_indices(msg: CompressedAttributes) -> list[int]:
    out = []
    for field in MAPS:
        out.extend(getattr(msg, field))
    out.extend(msg.strings.values())
    for m in msg.string_maps.values():
        out.extend(m.entries)
        out.extend(m.entries.values())
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_bags, st.integers(min_value=0, max_value=222))
def test_round_trip_property(bag, count):
    msg = encode_attributes(bag, count)
    parsed = CompressedAttributes.FromString(msg.SerializeToString())
    got = decode_attributes(parsed)
    assert got == bag
    assert _types(got) == _types(bag)
    for name, value in bag.items():
        if isinstance(value, float):  # 0.0 == -0.0: compare the bits
            assert math.copysign(1.0, got[name]) == math.copysign(1.0, value)
    # Every global index is one the caller knows; every message word is used and listed once.
    indices = _all_indices(parsed)
    assert all(i < count for i in indices if i >= 0)
    assert len(set(parsed.words)) == len(parsed.words)
    assert {~i for i in indices if i < 0} == set(range(len(parsed.words)))


# -- property: decoding against a model of MIXER.md 2.1 ---------------------------------------------------

_MESSAGE_WORDS = [f"msg.word{i}" for i in range(6)]  # unique and not global: indices never collide
_index = st.integers(min_value=-8, max_value=225)
_scalar_maps = {
    "strings": (wire.string, _index),
    "int64s": (wire.int64, st.integers(min_value=INT64_MIN, max_value=INT64_MAX)),
    "doubles": (wire.double, st.floats(allow_nan=False)),
    "bools": (wire.boolean, st.booleans()),
    "timestamps": (
        wire.timestamp,
        st.tuples(st.integers(-62_135_596_800, 253_402_300_799), st.integers(0, NS - 1)),
    ),
    "durations": (
        wire.duration,
        st.integers(-(10**18), 10**18).map(lambda n: (Duration(n).seconds, Duration(n).nanos)),
    ),
    "bytes": (wire.raw_bytes, st.binary(max_size=16)),
    "string_maps": (
        wire.string_map,
        st.dictionaries(_index, _index, max_size=3).map(lambda d: list(d.items())),
    ),
}
_messages = st.fixed_dictionaries(
    {"n_words": st.integers(0, len(_MESSAGE_WORDS))},
    optional={
        field: st.dictionaries(_index, values, max_size=3) for field, (_, values) in _scalar_maps.items()
    },
)


def _model(n_words: int, maps: dict) -> tuple[dict, set[int], bool]:
    """The expected bag, the undefined indices and whether a name repeats, as MIXER.md 2.1 says."""
    undefined: set[int] = set()

    def word(i: int) -> str:
        if 0 <= i < 222:
            return GLOBAL_WORDS[i]
        if i < 0 and -i - 1 < n_words:
            return _MESSAGE_WORDS[-i - 1]
        undefined.add(i)
        return f"<undefined {i}>"

    out: dict = {}
    names = []
    for field, entries in maps.items():
        for k, v in entries.items():
            name = word(k)
            names.append(name)
            if field == "strings":
                out[name] = word(v)
            elif field == "timestamps":
                out[name] = Timestamp(v[0] * NS + v[1])
            elif field == "durations":
                out[name] = Duration(v[0] * NS + v[1])
            elif field == "string_maps":
                out[name] = {word(ek): word(ev) for ek, ev in v}
            else:
                out[name] = v
    return out, undefined, len(set(names)) != len(names)


@settings(max_examples=200, deadline=None)
@given(_messages)
def test_decode_matches_the_model(spec):
    n_words = spec.pop("n_words")
    body = wire.words(*_MESSAGE_WORDS[:n_words])
    for field, entries in spec.items():
        build = _scalar_maps[field][0]
        for k, v in entries.items():
            body += build(k, *v) if field in ("timestamps", "durations") else build(k, v)
    msg = CompressedAttributes.FromString(body)
    expected, undefined, duplicate = _model(n_words, spec)
    if undefined or duplicate:
        with pytest.raises(DecodeError) as info:
            decode_attributes(msg)
        message = str(info.value)
        if not duplicate:
            found = re.match(r"attribute index (-?[0-9]+) is not defined", message)
            assert found, message
            assert int(found.group(1)) in undefined
        elif not undefined:
            assert message.startswith("duplicate attribute "), message
    else:
        got = decode_attributes(msg)
        assert got == expected
        assert _types(got) == _types(expected)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.none() | st.lists(st.text(max_size=4), max_size=4))
def test_random_bytes_raise_only_decode_error(data, words):
    try:
        msg = CompressedAttributes.FromString(data)
    except ProtobufDecodeError:
        return
    try:
        got = decode_attributes(msg, words)
    except DecodeError:
        return
    assert isinstance(got, dict)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(MAPS), max_size=6), st.lists(_index, min_size=12, max_size=12), st.data())
def test_random_wellformed_entries_raise_only_decode_error(fields, indices, data):
    """Valid protobuf with random indices and empty values: a bag or a DecodeError, nothing else."""
    body = wire.words(*data.draw(st.lists(st.sampled_from(["a", "source.ip", ""]), max_size=3)))
    for i, field in enumerate(fields):
        k, v = indices[2 * i], indices[2 * i + 1]
        number = MAPS.index(field) + 2
        value = wire.sint32_field(2, v) if field == "strings" else b""
        if field == "string_maps":
            value = wire.len_field(2, wire.map_entry(1, wire.sint32_field(1, v), wire.sint32_field(2, k)))
        body += wire.map_entry(number, wire.sint32_field(1, k), value)
    try:
        got = decode_attributes(CompressedAttributes.FromString(body))
    except DecodeError:
        return
    assert isinstance(got, dict)
