"""Golden vectors: CompressedAttributes bytes built by hand from field numbers (MIXER.md 1.6, 2.1).

Bytes come from `attribute_wire` (independent of the generated code), are parsed with the generated
CompressedAttributes and decoded with decode_attributes; and the other way, encode_attributes output
must serialize to hand-built bytes.
"""

from __future__ import annotations

import math

import attribute_wire as wire
import pytest

from mixerd.attribute import (
    CompressedAttributes,
    DecodeError,
    DictionaryMismatch,
    Duration,
    Timestamp,
    check_global_word_count,
    decode_attributes,
    encode_attributes,
)

INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)
IPV4 = bytes([10, 0, 0, 1])
IPV6 = bytes([0x20, 0x01, 0x0D, 0xB8] + [0] * 11 + [1])

# Global indices used below (checked against the reference list in test_dictionary.py).
SOURCE_IP = 0
SOURCE_PORT = 1
REQUEST_HEADERS = 15
REQUEST_SIZE = 23
REQUEST_TIME = 24
RESPONSE_DURATION = 29
RESPONSE_CODE = 30
AUTHORITY = 31
METHOD = 32
PATH = 33
STATUS = 35
HOST = 65
GET = 90
QUOTED_200 = 94
QUOTED_0 = 111
QUOTED_1 = 112
CONNECTION_MTLS = 177
DESTINATION_IP = 150
QUOTED_DASH = 218
PROXY_VERSION = 221


def decode(body: bytes, words: list[str] | None = None) -> dict:
    return decode_attributes(CompressedAttributes.FromString(body), words)


# -- the helper itself, against the examples of the protobuf encoding guide --------------------------


def test_wire_helper_matches_protobuf_encoding_examples():
    assert wire.varint(1) == b"\x01"
    assert wire.varint(150) == b"\x96\x01"
    assert wire.varint(-1) == b"\xff" * 9 + b"\x01"
    assert wire.varint_field(1, 150) == b"\x08\x96\x01"
    assert wire.string_field(2, "testing") == b"\x12\x07testing"
    assert [wire.zigzag32(n) for n in (0, -1, 1, -2, 2)] == [0, 1, 2, 3, 4]
    assert wire.zigzag32(-(1 << 31)) == 0xFFFFFFFF
    assert wire.zigzag32((1 << 31) - 1) == 0xFFFFFFFE
    assert wire.double_field(4, 1.0) == b"\x21" + bytes([0, 0, 0, 0, 0, 0, 0xF0, 0x3F])


# -- one value type at a time ------------------------------------------------------------------------


def test_empty_message_is_an_empty_bag():
    assert decode(b"") == {}


def test_string_name_and_value_both_global():
    assert decode(wire.string(AUTHORITY, METHOD)) == {":authority": ":method"}


def test_string_name_global_value_message():
    body = wire.words("example.com") + wire.string(AUTHORITY, -1)
    assert decode(body) == {":authority": "example.com"}


def test_string_name_message_value_global():
    body = wire.words("custom.verb") + wire.string(-1, GET)
    assert decode(body) == {"custom.verb": "GET"}


@pytest.mark.parametrize(
    ("index", "expected"),
    [(QUOTED_200, "'200'"), (QUOTED_0, "'0'"), (QUOTED_1, "'1'"), (QUOTED_DASH, '"-"'), (136, "200")],
)
def test_quoted_dictionary_words_decode_literally(index, expected):
    got = decode(wire.words("custom.text") + wire.string(-1, index))["custom.text"]
    assert got == expected
    assert len(got) == len(expected)


def test_last_global_index_and_message_index_arithmetic():
    body = wire.words("w0", "w1", "w2") + wire.string(-1, -3) + wire.string(-2, PROXY_VERSION)
    body += wire.string(PROXY_VERSION, -2)
    assert decode(body) == {"w0": "w2", "w1": "context.proxy_version", "context.proxy_version": "w1"}


@pytest.mark.parametrize("value", [0, 1, -1, 80, -300, 1 << 32, INT64_MAX, INT64_MIN])
def test_int64(value):
    got = decode(wire.int64(SOURCE_PORT, value))
    assert got == {"source.port": value}
    assert type(got["source.port"]) is int


@pytest.mark.parametrize("value", [0.0, 0.25, -1.5, 1e308, -1e-308, 5e-324, math.inf, -math.inf])
def test_double(value):
    got = decode(wire.words("custom.ratio") + wire.double(-1, value))["custom.ratio"]
    assert type(got) is float
    assert got == value


def test_double_negative_zero_and_nan():
    got = decode(wire.words("a", "b") + wire.double(-1, -0.0) + wire.double(-2, math.nan))
    assert math.copysign(1.0, got["a"]) == -1.0
    assert math.isnan(got["b"])


@pytest.mark.parametrize("value", [True, False])
def test_bool(value):
    got = decode(wire.boolean(CONNECTION_MTLS, value))["connection.mtls"]
    assert got is value


@pytest.mark.parametrize(
    ("seconds", "nanos", "expected_ns", "iso"),
    [
        (1_500_000_000, 123_456_789, 1_500_000_000_123_456_789, "2017-07-14T02:40:00.123456789Z"),
        (0, 0, 0, "1970-01-01T00:00:00Z"),
        (0, 1, 1, "1970-01-01T00:00:00.000000001Z"),
        (-1, 500_000_000, -500_000_000, "1969-12-31T23:59:59.5Z"),
        (-86_400, 0, -86_400 * 10**9, "1969-12-31T00:00:00Z"),
        (-62_135_596_800, 0, -62_135_596_800 * 10**9, "0001-01-01T00:00:00Z"),
        (253_402_300_799, 999_999_999, 253_402_300_799_999_999_999, "9999-12-31T23:59:59.999999999Z"),
    ],
)
def test_timestamp_exact_to_the_nanosecond(seconds, nanos, expected_ns, iso):
    got = decode(wire.timestamp(REQUEST_TIME, seconds, nanos))["request.time"]
    assert isinstance(got, Timestamp)
    assert int(got) == expected_ns
    assert (got.seconds, got.nanos) == (seconds, nanos)
    assert got.isoformat() == iso


@pytest.mark.parametrize(
    ("seconds", "nanos", "expected_ns", "text"),
    [
        (1, 500_000_000, 1_500_000_000, "1.5s"),
        (0, 0, 0, "0s"),
        (0, 1, 1, "1ns"),
        (-1, -500_000_000, -1_500_000_000, "-1.5s"),
        (0, -1, -1, "-1ns"),
        (3900, 0, 3_900 * 10**9, "1h5m0s"),
        (-9_223_372_036, -854_775_808, INT64_MIN, "-2562047h47m16.854775808s"),
    ],
)
def test_duration(seconds, nanos, expected_ns, text):
    got = decode(wire.duration(RESPONSE_DURATION, seconds, nanos))["response.duration"]
    assert isinstance(got, Duration)
    assert int(got) == expected_ns
    assert str(got) == text


@pytest.mark.parametrize("value", [IPV4, IPV6, b"", b"\x00", bytes(range(256))])
def test_bytes(value):
    got = decode(wire.raw_bytes(SOURCE_IP, value))["source.ip"]
    assert type(got) is bytes
    assert got == value


def test_string_map_keys_and_values_are_words():
    body = wire.words("x-custom", "some value")
    body += wire.string_map(REQUEST_HEADERS, [(METHOD, GET), (-1, QUOTED_200), (HOST, -2), (-2, -1)])
    assert decode(body) == {
        "request.headers": {
            ":method": "GET",
            "x-custom": "'200'",
            "host": "some value",
            "some value": "x-custom",
        }
    }


def test_empty_string_map():
    assert decode(wire.string_map(REQUEST_HEADERS, [])) == {"request.headers": {}}


def test_every_type_in_one_bag_with_both_index_spaces():
    body = wire.words("custom.ratio", "example.com", "x-b3-traceid-x", "abc", "custom.flag")
    body += wire.string(AUTHORITY, -2)
    body += wire.string(PATH, GET)
    body += wire.int64(RESPONSE_CODE, 200)
    body += wire.int64(REQUEST_SIZE, -5)
    body += wire.double(-1, 0.5)
    body += wire.boolean(CONNECTION_MTLS, True)
    body += wire.boolean(-5, False)
    body += wire.timestamp(REQUEST_TIME, 1_600_000_000, 7)
    body += wire.duration(RESPONSE_DURATION, 0, 300_000_000)
    body += wire.raw_bytes(SOURCE_IP, IPV4)
    body += wire.raw_bytes(DESTINATION_IP, IPV6)
    body += wire.string_map(REQUEST_HEADERS, [(-3, -4), (STATUS, QUOTED_200)])
    got = decode(body)
    expected = {
        ":authority": "example.com",
        ":path": "GET",
        "response.code": 200,
        "request.size": -5,
        "custom.ratio": 0.5,
        "connection.mtls": True,
        "custom.flag": False,
        "request.time": Timestamp(1_600_000_000_000_000_007),
        "response.duration": Duration(300_000_000),
        "source.ip": IPV4,
        "destination.ip": IPV6,
        "request.headers": {"x-b3-traceid-x": "abc", ":status": "'200'"},
    }
    assert got == expected
    # Equality alone would let True stand for 1 and an int for a Timestamp: check the types too.
    assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in expected.items()}


def test_explicit_words_override_the_message_words():
    body = wire.words("from.message") + wire.string(-1, -1)
    msg = CompressedAttributes.FromString(body)
    assert decode_attributes(msg) == {"from.message": "from.message"}
    assert decode_attributes(msg, ["from.default"]) == {"from.default": "from.default"}


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "index", "where"),
    [
        (wire.string(222, GET), 222, "attribute name"),
        (wire.int64(1000, 1), 1000, "attribute name"),
        (wire.double(-2, 1.0), -2, "attribute name"),
        (wire.boolean(-3, True), -3, "attribute name"),
        (wire.timestamp(222, 1), 222, "attribute name"),
        (wire.duration(-100, 1), -100, "attribute name"),
        (wire.raw_bytes(5000, IPV4), 5000, "attribute name"),
        (wire.string_map(-7, []), -7, "attribute name"),
        (wire.string(AUTHORITY, 222), 222, "':authority'"),
        (wire.string(AUTHORITY, -2), -2, "':authority'"),
        (wire.string_map(REQUEST_HEADERS, [(222, GET)]), 222, "key"),
        (wire.string_map(REQUEST_HEADERS, [(-2, GET)]), -2, "key"),
        (wire.string_map(REQUEST_HEADERS, [(METHOD, 300)]), 300, "value"),
        (wire.string_map(REQUEST_HEADERS, [(METHOD, -9)]), -9, "value"),
    ],
)
def test_index_out_of_range(body, index, where):
    with pytest.raises(DecodeError) as info:
        decode(wire.words("only.word") + body)
    message = str(info.value)
    assert f"attribute index {index} is not defined" in message
    assert where in message


def test_string_map_errors_name_the_map():
    with pytest.raises(DecodeError, match=r"key in string map 'request.headers'"):
        decode(wire.string_map(REQUEST_HEADERS, [(400, GET)]))
    with pytest.raises(DecodeError, match=r"value in string map 'request.headers'"):
        decode(wire.string_map(REQUEST_HEADERS, [(GET, 400)]))


def test_no_message_words_means_every_negative_index_is_undefined():
    with pytest.raises(DecodeError, match=r"attribute index -1 is not defined"):
        decode(wire.string(-1, GET))


def test_boundaries_are_inclusive_of_the_last_word_only():
    assert decode(wire.words("a", "b") + wire.string(-2, PROXY_VERSION)) == {"b": "context.proxy_version"}
    with pytest.raises(DecodeError, match=r"-3"):
        decode(wire.words("a", "b") + wire.string(-3, GET))
    with pytest.raises(DecodeError, match=r"222"):
        decode(wire.string(AUTHORITY, 222))


def test_an_overriding_word_list_sets_the_message_range():
    msg = CompressedAttributes.FromString(wire.words("a", "b") + wire.string(-2, GET))
    with pytest.raises(DecodeError, match=r"-2"):
        decode_attributes(msg, ["only"])


@pytest.mark.parametrize(
    "body",
    [
        wire.string(SOURCE_PORT, GET) + wire.int64(SOURCE_PORT, 1),
        wire.int64(-1, 1) + wire.double(-1, 1.0),
        wire.boolean(SOURCE_PORT, True) + wire.string_map(SOURCE_PORT, []),
        wire.duration(SOURCE_PORT, 1) + wire.raw_bytes(SOURCE_PORT, IPV4),
        wire.timestamp(SOURCE_PORT, 1) + wire.timestamp(-1, 1),
        # The same name through a global index and a message word, in one map.
        wire.int64(SOURCE_PORT, 1) + wire.int64(-1, 2),
    ],
)
def test_duplicate_attribute(body):
    with pytest.raises(DecodeError, match=r"duplicate attribute 'source.port'"):
        decode(wire.words("source.port") + body)


def test_check_global_word_count():
    check_global_word_count(0)
    check_global_word_count(111)
    check_global_word_count(222)
    with pytest.raises(DictionaryMismatch) as info:
        check_global_word_count(223)
    assert str(info.value) == (
        "inconsistent global dictionary versions used: mixer knows 222 words, caller knows 223"
    )


# -- encoding: encode_attributes must produce these exact bytes ------------------------------------------

# One entry per map, so the serialization is deterministic: fields in number order, each map entry as
# key then value. The string map's value is a word used earlier, so the order of first use is unambiguous.
BAG = {
    "source.ip": IPV4,
    ":authority": "example.com",
    "response.code": 404,
    "custom.ratio": 0.25,
    "connection.mtls": True,
    "request.time": Timestamp(1_500_000_000_123_456_789),
    "response.duration": Duration(-1_500_000_000),
    "request.headers": {"host": "example.com"},
}


def _golden(words: list[str], idx: dict[str, int]) -> bytes:
    return (
        wire.words(*words)
        + wire.string(idx[":authority"], idx["example.com"])
        + wire.int64(idx["response.code"], 404)
        + wire.double(idx["custom.ratio"], 0.25)
        + wire.boolean(idx["connection.mtls"], True)
        + wire.timestamp(idx["request.time"], 1_500_000_000, 123_456_789)
        + wire.duration(idx["response.duration"], -1, -500_000_000)
        + wire.raw_bytes(idx["source.ip"], IPV4)
        + wire.string_map(idx["request.headers"], [(idx["host"], idx["example.com"])])
    )


GLOBAL_IDX = {
    "source.ip": SOURCE_IP,
    ":authority": AUTHORITY,
    "response.code": RESPONSE_CODE,
    "connection.mtls": CONNECTION_MTLS,
    "request.time": REQUEST_TIME,
    "response.duration": RESPONSE_DURATION,
    "request.headers": REQUEST_HEADERS,
    "host": HOST,
}


def test_encode_golden_with_the_full_global_dictionary():
    idx = {**GLOBAL_IDX, "example.com": -1, "custom.ratio": -2}
    got = encode_attributes(BAG, 222).SerializeToString()
    assert got == _golden(["example.com", "custom.ratio"], idx)


def test_encode_golden_default_count_is_the_full_dictionary():
    idx = {**GLOBAL_IDX, "example.com": -1, "custom.ratio": -2}
    assert encode_attributes(BAG).SerializeToString() == _golden(["example.com", "custom.ratio"], idx)


def test_encode_golden_without_the_global_dictionary():
    order = [
        "source.ip",
        ":authority",
        "example.com",
        "response.code",
        "custom.ratio",
        "connection.mtls",
        "request.time",
        "response.duration",
        "request.headers",
        "host",
    ]
    idx = {w: -(i + 1) for i, w in enumerate(order)}
    assert encode_attributes(BAG, 0).SerializeToString() == _golden(order, idx)


def test_encode_golden_with_a_partial_global_dictionary():
    # A client that knows 31 words: indices 0..30 are global, :authority (31) and beyond are not.
    order = [":authority", "example.com", "custom.ratio", "connection.mtls", "host"]
    idx = {**GLOBAL_IDX, **{w: -(i + 1) for i, w in enumerate(order)}}
    assert encode_attributes(BAG, 31).SerializeToString() == _golden(order, idx)
    # ... and one more word makes :authority global.
    order = ["example.com", "custom.ratio", "connection.mtls", "host"]
    idx = {**GLOBAL_IDX, **{w: -(i + 1) for i, w in enumerate(order)}}
    assert encode_attributes(BAG, 32).SerializeToString() == _golden(order, idx)


def test_encode_golden_decodes_back():
    for count in (0, 31, 222):
        assert decode(encode_attributes(BAG, count).SerializeToString()) == BAG


def test_encode_quoted_words_use_their_global_index():
    got = encode_attributes({"request.headers": {":status": "'200'"}, "custom.dash": '"-"'}, 222)
    expected = wire.words("custom.dash") + wire.string(-1, QUOTED_DASH)
    expected += wire.string_map(REQUEST_HEADERS, [(STATUS, QUOTED_200)])
    assert got.SerializeToString() == expected
