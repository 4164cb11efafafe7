"""AttributeBag reference tracking and ReferencedAttributes encoding (MIXER.md 1.3, 8.5; checklist 8)."""

from __future__ import annotations

import attribute_wire as wire
import pytest

from mixerd.api.mixer.v1 import mixer_pb2
from mixerd.attribute import (
    BUILTIN_MANIFEST,
    AttributeBag,
    Condition,
    Reference,
    ValueType,
    decode_references,
    encode_references,
)

EXACT = Condition.EXACT
ABSENCE = Condition.ABSENCE

SOURCE_IP = 0
SOURCE_UID = 3
REQUEST_HEADERS = 15
AUTHORITY = 31
METHOD = 32
DESTINATION_UID = 154


def test_condition_numbers():
    assert (Condition.CONDITION_UNSPECIFIED, ABSENCE, EXACT, Condition.REGEX) == (0, 1, 2, 3)
    assert (wire.ABSENCE, wire.EXACT) == (1, 2)


def test_get_present_is_exact_and_absent_is_absence():
    b = AttributeBag({"source.uid": "kubernetes://a.ns", "response.code": 0})
    assert b.get("source.uid") == "kubernetes://a.ns"
    assert b.get("destination.uid") is None
    assert b.get("response.code") == 0
    assert b.references() == [
        Reference("source.uid", EXACT),
        Reference("destination.uid", ABSENCE),
        Reference("response.code", EXACT),
    ]


@pytest.mark.parametrize("falsy", [0, "", False, 0.0, b"", {}])
def test_falsy_values_are_present(falsy):
    b = AttributeBag({"x.y": falsy})
    assert b.contains("x.y") is True
    assert b.get("x.y") == falsy
    assert b.references() == [Reference("x.y", EXACT)]


def test_contains_records():
    b = AttributeBag({"a.b": 1})
    assert b.contains("a.b") is True
    assert b.contains("c.d") is False
    assert b.references() == [Reference("a.b", EXACT), Reference("c.d", ABSENCE)]


def test_map_get_records_the_key_not_the_map():
    b = AttributeBag({"request.headers": {":method": "GET", "x-empty": ""}})
    assert b.map_get("request.headers", ":method") == "GET"
    assert b.map_get("request.headers", "x-missing") is None
    assert b.map_get("request.headers", "x-empty") == ""
    assert b.references() == [
        Reference("request.headers", EXACT, ":method"),
        Reference("request.headers", ABSENCE, "x-missing"),
        Reference("request.headers", EXACT, "x-empty"),
    ]
    assert dict(b.raw_references) == {
        ("request.headers", ":method"): EXACT,
        ("request.headers", "x-missing"): ABSENCE,
        ("request.headers", "x-empty"): EXACT,
    }


def test_map_get_on_an_absent_map_records_the_name_absent_with_no_key():
    b = AttributeBag({})
    assert b.map_get("request.headers", ":method") is None
    assert b.references() == [Reference("request.headers", ABSENCE)]
    assert b.references()[0].key is None


def test_whole_map_and_key_are_separate_records():
    b = AttributeBag({"request.headers": {"a": "1"}})
    assert b.get("request.headers") == {"a": "1"}
    assert b.map_get("request.headers", "a") == "1"
    assert b.references() == [Reference("request.headers", EXACT), Reference("request.headers", EXACT, "a")]


def test_reads_that_do_not_record():
    b = AttributeBag({"a.b": 1, "request.headers": {"k": "v"}})
    assert b.peek("a.b") == 1
    assert b.peek("missing") is None
    assert b.names() == ["a.b", "request.headers"]
    assert list(b.items()) == [("a.b", 1), ("request.headers", {"k": "v"})]
    assert b.as_dict() == {"a.b": 1, "request.headers": {"k": "v"}}
    assert len(b) == 2
    repr(b)
    assert b.references() == []
    assert dict(b.raw_references) == {}


def test_first_record_wins():
    values: dict = {}
    b = AttributeBag.wrap(values)
    assert b.get("late.attr") is None
    values["late.attr"] = 1
    values["request.headers"] = {}
    assert b.get("late.attr") == 1  # now present, but the first answer is what the outcome depended on
    assert b.map_get("request.headers", "k") is None
    values["request.headers"]["k"] = "v"
    assert b.map_get("request.headers", "k") == "v"
    assert b.references() == [Reference("late.attr", ABSENCE), Reference("request.headers", ABSENCE, "k")]


def test_references_in_order_of_first_use_without_repeats():
    b = AttributeBag({"a.a": 1, "b.b": 2, "m.m": {"k": "v"}})
    for name in ["b.b", "z.z", "a.a", "b.b", "z.z"]:
        b.get(name)
    b.map_get("m.m", "k")
    b.get("a.a")
    b.map_get("m.m", "k")
    b.map_get("m.m", "j")
    assert b.references() == [
        Reference("b.b", EXACT),
        Reference("z.z", ABSENCE),
        Reference("a.a", EXACT),
        Reference("m.m", EXACT, "k"),
        Reference("m.m", ABSENCE, "j"),
    ]


def test_clear_references():
    b = AttributeBag({"a.a": 1})
    b.get("a.a")
    b.clear_references()
    assert b.references() == []
    b.get("b.b")
    assert b.references() == [Reference("b.b", ABSENCE)]


def test_wrap_does_not_copy_and_the_constructor_does():
    values = {"a.a": 1}
    wrapped, copied = AttributeBag.wrap(values), AttributeBag(values)
    values["b.b"] = 2
    assert wrapped.peek("b.b") == 2
    assert copied.peek("b.b") is None


def test_get_typed():
    b = AttributeBag({"request.size": 10, "request.path": "/x", "connection.mtls": True})
    assert b.get_typed("request.size", int) == 10
    assert b.get_typed("missing.attr", int) is None
    with pytest.raises(TypeError) as info:
        b.get_typed("request.path", int)
    assert "'request.path'" in str(info.value)
    assert "int" in str(info.value)
    # The failed read still depended on the value being there.
    assert b.references() == [
        Reference("request.size", EXACT),
        Reference("missing.attr", ABSENCE),
        Reference("request.path", EXACT),
    ]


# -- encode_references ---------------------------------------------------------------------------------

REFS = [
    Reference("source.ip", EXACT),
    Reference("request.headers", EXACT, ":method"),
    Reference("custom.attr", ABSENCE),
    Reference("request.headers", ABSENCE, "x-custom"),
    Reference("destination.uid", ABSENCE),
    Reference("request.headers", EXACT, ":authority"),
]


def test_encode_references_with_the_full_dictionary():
    got = encode_references(REFS, 222)
    expected = wire.referenced(
        ["custom.attr", "x-custom"],
        [
            wire.attribute_match(SOURCE_IP, wire.EXACT),
            wire.attribute_match(REQUEST_HEADERS, wire.EXACT, METHOD),
            wire.attribute_match(-1, wire.ABSENCE),
            wire.attribute_match(REQUEST_HEADERS, wire.ABSENCE, -2),
            wire.attribute_match(DESTINATION_UID, wire.ABSENCE),
            wire.attribute_match(REQUEST_HEADERS, wire.EXACT, AUTHORITY),
        ],
    )
    assert got.SerializeToString() == expected
    # map_key 0 means "no key": whole-attribute matches carry none (MIXER.md 1.3).
    assert [m.map_key for m in got.attribute_matches] == [0, METHOD, 0, -2, 0, AUTHORITY]


def test_encode_references_with_a_small_client_dictionary():
    # A client that knows 10 words: only source.ip (0) and source.uid (3) are global for it.
    refs = [*REFS, Reference("source.uid", EXACT)]
    got = encode_references(refs, 10)
    words = ["request.headers", ":method", "custom.attr", "x-custom", "destination.uid", ":authority"]
    expected = wire.referenced(
        words,
        [
            wire.attribute_match(SOURCE_IP, wire.EXACT),
            wire.attribute_match(-1, wire.EXACT, -2),
            wire.attribute_match(-3, wire.ABSENCE),
            wire.attribute_match(-1, wire.ABSENCE, -4),
            wire.attribute_match(-5, wire.ABSENCE),
            wire.attribute_match(-1, wire.EXACT, -6),
            wire.attribute_match(SOURCE_UID, wire.EXACT),
        ],
    )
    assert got.SerializeToString() == expected


def test_encode_references_without_the_global_dictionary():
    got = encode_references([Reference("source.ip", EXACT), Reference("request.headers", EXACT, "a")], 0)
    assert list(got.words) == ["source.ip", "request.headers", "a"]
    assert [(m.name, m.condition, m.map_key) for m in got.attribute_matches] == [(-1, 2, 0), (-2, 2, -3)]


def test_encode_references_never_sends_regex():
    got = encode_references(REFS, 222)
    assert {m.condition for m in got.attribute_matches} <= {1, 2}
    assert all(m.regex == "" for m in got.attribute_matches)


def test_encode_references_of_a_recorded_bag():
    b = AttributeBag({"source.uid": "kubernetes://a.ns", "request.headers": {":method": "GET"}})
    b.get("source.uid")
    b.map_get("request.headers", ":method")
    b.map_get("request.headers", "x-missing")
    b.get("destination.uid")
    b.map_get("response.headers", "x")
    msg = mixer_pb2.ReferencedAttributes.FromString(
        encode_references(b.references(), 222).SerializeToString()
    )
    assert list(msg.words) == ["x-missing"]
    assert [(m.name, m.condition, m.map_key) for m in msg.attribute_matches] == [
        (SOURCE_UID, 2, 0),
        (REQUEST_HEADERS, 2, METHOD),
        (REQUEST_HEADERS, 1, -1),
        (DESTINATION_UID, 1, 0),
        (26, 1, 0),  # response.headers: an absent map, no key
    ]


def _is_string_map(name: str) -> bool:
    return BUILTIN_MANIFEST.get(name) is ValueType.STRING_MAP


@pytest.mark.parametrize("count", [0, 10, 111, 222])
def test_decode_references_round_trip(count):
    msg = mixer_pb2.ReferencedAttributes.FromString(encode_references(REFS, count).SerializeToString())
    assert decode_references(msg, _is_string_map) == REFS


def test_decode_references_reads_map_key_only_for_string_maps():
    body = wire.referenced(
        ["custom.attr"],
        [
            wire.attribute_match(SOURCE_IP, wire.EXACT),
            wire.attribute_match(SOURCE_UID, wire.EXACT, METHOD),  # not a map: the proxy ignores map_key
            wire.attribute_match(REQUEST_HEADERS, wire.ABSENCE),  # map_key 0: the whole map
            wire.attribute_match(REQUEST_HEADERS, wire.EXACT, -1),
        ],
    )
    msg = mixer_pb2.ReferencedAttributes.FromString(body)
    assert decode_references(msg, _is_string_map) == [
        Reference("source.ip", EXACT),
        Reference("source.uid", EXACT),
        Reference("request.headers", ABSENCE),
        Reference("request.headers", EXACT, "custom.attr"),
    ]
    # Without the predicate any non-zero map_key counts.
    assert decode_references(msg)[1] == Reference("source.uid", EXACT, ":method")


def test_map_key_with_global_index_zero_goes_to_message_words() -> None:
    """0 in map_key means "no key"; the word with global index 0 must not be sent as 0."""
    from mixerd.attribute import GLOBAL_WORDS, Condition, Reference, decode_references, encode_references

    key = GLOBAL_WORDS[0]
    msg = encode_references([Reference("request.headers", Condition.EXACT, key)], 222)
    (match,) = msg.attribute_matches
    assert match.map_key < 0
    assert list(msg.words) == [key]
    assert decode_references(msg, lambda name: name == "request.headers") == [
        Reference("request.headers", Condition.EXACT, key)
    ]
