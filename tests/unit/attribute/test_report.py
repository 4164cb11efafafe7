"""ReportRequest batches: default_words, DELTA vs INDEPENDENT encoding (MIXER.md 1.5, 2.4; checklist 3)."""

from __future__ import annotations

import attribute_wire as wire
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixerd.api.mixer.v1 import mixer_pb2
from mixerd.attribute import (
    CompressedAttributes,
    DecodeError,
    Duration,
    ReportTooLarge,
    Timestamp,
    decode_attributes,
    decode_report,
    encode_report,
)

ReportRequest = mixer_pb2.ReportRequest

SOURCE_PORT = 1
REQUEST_PATH = 17
RESPONSE_CODE = 30
GET = 90
POST = 91
CONNECTION_MTLS = 177


def parse(body: bytes) -> ReportRequest:
    return ReportRequest.FromString(body)


def decoded(body: bytes) -> list[tuple[int, dict | DecodeError]]:
    """decode_report's output, copying each bag as it is yielded (what a dispatcher would see then)."""
    return [(i, v if isinstance(v, DecodeError) else dict(v)) for i, v in decode_report(parse(body))]


# Three elements that only make sense as deltas: the later ones carry just what changed.
FIRST = wire.int64(RESPONSE_CODE, 200) + wire.string(REQUEST_PATH, GET)
OVERWRITE = wire.string(REQUEST_PATH, POST)
ADD = wire.boolean(CONNECTION_MTLS, True)

BAG0 = {"response.code": 200, "request.path": "GET"}
BAG1 = {"response.code": 200, "request.path": "POST"}
BAG2 = {"response.code": 200, "request.path": "POST", "connection.mtls": True}


def test_semantics_enum_numbers():
    assert ReportRequest.DELTA_ENCODING == wire.DELTA_ENCODING == 0
    assert ReportRequest.INDEPENDENT_ENCODING == wire.INDEPENDENT_ENCODING == 1


def test_missing_semantics_field_means_delta():
    body = wire.report([FIRST, OVERWRITE, ADD])
    assert parse(body).repeated_attributes_semantics == ReportRequest.DELTA_ENCODING
    assert decoded(body) == [(0, BAG0), (1, BAG1), (2, BAG2)]


def test_explicit_delta_on_the_wire():
    body = wire.report([FIRST, OVERWRITE, ADD], semantics=wire.DELTA_ENCODING, global_word_count=222)
    assert decoded(body) == [(0, BAG0), (1, BAG1), (2, BAG2)]


def test_delta_bags_are_snapshots():
    """Each yielded bag is the running bag as it stood then; a later element does not change it."""
    got = list(decode_report(parse(wire.report([FIRST, OVERWRITE, ADD]))))
    assert [bag for _, bag in got] == [BAG0, BAG1, BAG2]


def test_delta_never_deletes():
    # An empty element changes nothing; the running bag is reported again.
    body = wire.report([FIRST, b"", ADD])
    assert decoded(body) == [(0, BAG0), (1, BAG0), (2, {**BAG0, "connection.mtls": True})]


def test_delta_can_change_an_attribute_type():
    body = wire.report([wire.int64(SOURCE_PORT, 1), wire.string(SOURCE_PORT, GET)])
    got = decoded(body)
    assert got == [(0, {"source.port": 1}), (1, {"source.port": "GET"})]


def test_independent_elements_stand_alone():
    body = wire.report([FIRST, OVERWRITE, ADD], semantics=wire.INDEPENDENT_ENCODING)
    assert decoded(body) == [
        (0, BAG0),
        (1, {"request.path": "POST"}),
        (2, {"connection.mtls": True}),
    ]


@pytest.mark.parametrize("semantics", [None, wire.INDEPENDENT_ENCODING])
def test_empty_words_use_default_words_and_own_words_replace_them(semantics):
    defaults = ["custom.a", "from-default", "custom.c"]
    own = wire.words("custom.b", "own")
    body = wire.report(
        [
            wire.string(-1, -2),  # no words: default_words
            own + wire.string(-1, -2),  # its own words, not the defaults
            wire.string(-3, -2),
        ],
        default_words=defaults,
        semantics=semantics,
    )
    got = [bag for _, bag in decoded(body)]
    if semantics is None:
        assert got == [
            {"custom.a": "from-default"},
            {"custom.a": "from-default", "custom.b": "own"},
            {"custom.a": "from-default", "custom.b": "own", "custom.c": "from-default"},
        ]
    else:
        assert got == [{"custom.a": "from-default"}, {"custom.b": "own"}, {"custom.c": "from-default"}]


def test_own_words_are_not_extended_by_default_words():
    body = wire.report([wire.words("custom.b") + wire.string(-1, -2)], default_words=["x", "y"])
    [(position, error)] = decoded(body)
    assert position == 0
    assert isinstance(error, DecodeError)
    assert "-2" in str(error)


def test_delta_continues_from_the_last_good_bag():
    bad = wire.string(REQUEST_PATH, 5000) + wire.boolean(CONNECTION_MTLS, False)
    body = wire.report([FIRST, bad, ADD])
    got = decoded(body)
    assert got[0] == (0, BAG0)
    assert got[1][0] == 1
    assert isinstance(got[1][1], DecodeError)
    assert "5000" in str(got[1][1])
    # Nothing of the bad element leaks into the running bag (not even its good connection.mtls=False).
    assert got[2] == (2, {**BAG0, "connection.mtls": True})


def test_a_bad_first_element_leaves_an_empty_running_bag():
    body = wire.report([wire.string(-1, GET), ADD])
    got = decoded(body)
    assert isinstance(got[0][1], DecodeError)
    assert got[1] == (1, {"connection.mtls": True})


def test_independent_bad_element_in_the_middle():
    dup = wire.int64(SOURCE_PORT, 1) + wire.boolean(SOURCE_PORT, True)
    body = wire.report([FIRST, dup, ADD], semantics=wire.INDEPENDENT_ENCODING)
    got = decoded(body)
    assert got[0] == (0, BAG0)
    assert isinstance(got[1][1], DecodeError)
    assert "duplicate attribute 'source.port'" in str(got[1][1])
    assert got[2] == (2, {"connection.mtls": True})


def test_no_elements():
    assert decoded(wire.report([], default_words=["a"])) == []


def _amplifying(
    attributes: int, empty_bags: int, semantics: int = ReportRequest.DELTA_ENCODING
) -> ReportRequest:
    """One bag of `attributes` distinct string attributes, then `empty_bags` bags that change nothing."""
    request = ReportRequest(repeated_attributes_semantics=semantics)
    first = request.attributes.add()
    first.words.extend(f"a{i}" for i in range(attributes))
    for i in range(attributes):
        first.strings[-(i + 1)] = -(i + 1)
    for _ in range(empty_bags):
        request.attributes.add().words.append("x")
    return ReportRequest.FromString(request.SerializeToString())


def test_delta_bags_count_what_they_carry_over_against_the_limit():
    request = _amplifying(1000, 9)  # 10 bags of 1000 values each: 10,000 in all, from ~13 KB
    assert sum(len(bag) for _, bag in decode_report(request, max_values=10_000)) == 10_000
    with pytest.raises(ReportTooLarge, match="more than 9999 attribute values in all"):
        for _ in decode_report(request, max_values=9_999):
            pass


def test_the_limit_stops_before_the_bag_that_would_pass_it():
    request = _amplifying(20_000, 2_000)  # 342 KB: 40 million values (830 MB) without a limit
    seen = []
    with pytest.raises(ReportTooLarge):
        for position, _ in decode_report(request, max_values=1 << 20):
            seen.append(position)
    assert seen == list(range(52))  # 52 bags of 20,000 fit in 2^20


def test_independent_bags_count_only_their_own_values():
    request = _amplifying(1000, 9, ReportRequest.INDEPENDENT_ENCODING)
    assert [len(bag) for _, bag in decode_report(request, max_values=1000)] == [1000] + [0] * 9


# -- encode_report ---------------------------------------------------------------------------------------

BAGS = [
    {
        "request.path": "/a",
        "response.code": 200,
        "request.headers": {":method": "GET", "x-custom": "v"},
        "request.time": Timestamp(1_500_000_000_000_000_001),
    },
    {
        "request.path": "/b",
        "response.code": 200,
        "request.headers": {":method": "GET", "x-custom": "v"},
        "request.time": Timestamp(1_500_000_000_000_000_001),
        "response.duration": Duration(-5),
    },
    {
        "request.path": "/b",
        "response.code": 503,
        "request.headers": {":method": "POST"},
        "request.time": Timestamp(1_500_000_000_000_000_002),
        "response.duration": Duration(-5),
        "custom.ratio": 0.5,
    },
]


def _round_trip(request: ReportRequest) -> list[dict]:
    parsed = ReportRequest.FromString(request.SerializeToString())
    out = []
    for _, bag in decode_report(parsed):
        assert not isinstance(bag, DecodeError), bag
        out.append(dict(bag))
    return out


@pytest.mark.parametrize("delta", [False, True])
@pytest.mark.parametrize("count", [0, 20, 222])
def test_encode_report_round_trip(delta, count):
    request = encode_report(BAGS, count, delta=delta)
    assert request.global_word_count == count
    assert request.repeated_attributes_semantics == (
        ReportRequest.DELTA_ENCODING if delta else ReportRequest.INDEPENDENT_ENCODING
    )
    # One shared dictionary: the elements carry no words of their own.
    assert all(len(a.words) == 0 for a in request.attributes)
    assert _round_trip(request) == BAGS


def test_encode_report_delta_sends_only_changes():
    request = encode_report(BAGS, delta=True)
    words = list(request.default_words)
    changes = [
        decode_attributes(CompressedAttributes.FromString(a.SerializeToString()), words)
        for a in request.attributes
    ]
    assert changes[0] == BAGS[0]
    assert changes[1] == {"request.path": "/b", "response.duration": Duration(-5)}
    assert changes[2] == {
        "response.code": 503,
        "request.headers": {":method": "POST"},
        "request.time": Timestamp(1_500_000_000_000_000_002),
        "custom.ratio": 0.5,
    }


def test_encode_report_delta_notices_a_type_change():
    """True == 1 in Python, but a bool and an int64 are different attributes on the wire."""
    bags = [{"custom.x": 1}, {"custom.x": True}, {"custom.x": 1.0}, {"custom.x": Duration(1)}]
    got = _round_trip(encode_report(bags, delta=True))
    assert [type(b["custom.x"]) for b in got] == [int, bool, float, Duration]


def test_encode_report_independent_is_complete_per_element():
    request = encode_report(BAGS)
    words = list(request.default_words)
    for element, bag in zip(request.attributes, BAGS, strict=True):
        assert decode_attributes(element, words) == bag


def test_encode_report_delta_cannot_delete():
    with pytest.raises(ValueError, match=r"response\.code"):
        encode_report([{"request.path": "/a", "response.code": 200}, {"request.path": "/a"}], delta=True)
    # Independent encoding has no such limit.
    assert _round_trip(encode_report([{"a.b": 1, "c.d": 2}, {"a.b": 1}])) == [
        {"a.b": 1, "c.d": 2},
        {"a.b": 1},
    ]


# -- property: any sequence of growing bags survives delta, any sequence survives independent ----------

_values = st.one_of(
    st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1),
    st.booleans(),
    st.text(max_size=5),
    st.sampled_from(["GET", "'200'", "request.path", '"-"']),
    st.builds(Duration, st.integers(min_value=-(10**12), max_value=10**12)),
)


def _types(bag: dict) -> dict:
    return {k: type(v) for k, v in bag.items()}


_names = st.sampled_from(["request.path", "response.code", "custom.a", "custom.b", ":status", "source.port"])
_bags = st.lists(st.dictionaries(_names, _values, max_size=4), min_size=1, max_size=4)


@settings(max_examples=100, deadline=None)
@given(_bags, st.integers(min_value=0, max_value=222))
def test_report_round_trip_property(bags, count):
    got = _round_trip(encode_report(bags, count))
    assert got == bags
    assert [_types(b) for b in got] == [_types(b) for b in bags]
    # Make each bag a superset of the one before so delta encoding can express the sequence.
    growing, running = [], {}
    for bag in bags:
        running = {**running, **bag}
        growing.append(running)
    got = _round_trip(encode_report(growing, count, delta=True))
    assert got == growing
    assert [_types(b) for b in got] == [_types(b) for b in growing]
