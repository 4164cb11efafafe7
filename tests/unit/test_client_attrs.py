"""The attribute flags of `mixerd check` / `mixerd report`: parsing, type guessing, errors, and encoding."""

from __future__ import annotations

import ipaddress

import pytest

from mixerd.attribute import GLOBAL_WORDS, Duration, Timestamp, decode_attributes, decode_report
from mixerd.cli import build_parser
from mixerd.client import attrs
from mixerd.client.attrs import AttributeFlagError, guess_value, parse_attribute_flag, parse_quotas
from mixerd.client.calls import DedupIds, build_check_request, build_report_request

# -- typed flags --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        ("string", "a=hello,b=x=y,c=", {"a": "hello", "b": "x=y", "c": ""}),
        ("int64", "a=42,b=-7,c=+3", {"a": 42, "b": -7, "c": 3}),
        ("int64", "max=9223372036854775807", {"max": 2**63 - 1}),
        ("double", "a=1.5,b=-2,c=1e3,d=.5", {"a": 1.5, "b": -2.0, "c": 1000.0, "d": 0.5}),
        ("bool", "a=true,b=false,c=True,d=0,e=t", {"a": True, "b": False, "c": True, "d": False, "e": True}),
        (
            "timestamp",
            "a=2017-01-01T00:00:00Z,b=2017-01-01T02:00:00.5+02:00",
            {"a": Timestamp.parse("2017-01-01T00:00:00Z"), "b": Timestamp.parse("2017-01-01T00:00:00.5Z")},
        ),
        (
            "duration",
            "a=10ms,b=1h5m,c=0",
            {"a": Duration(10_000_000), "b": Duration(3_900 * 10**9), "c": Duration(0)},
        ),
        ("bytes", "a=0a:0b,b=ff,c=1:002", {"a": b"\x0a\x0b", "b": b"\xff", "c": b"\x01\x02"}),
        ("stringmap", "a=k1:v1;k2:v2", {"a": {"k1": "v1", "k2": "v2"}}),
        ("stringmap", "a=k:v:w", {"a": {"k": "v:w"}}),
        ("stringmap", "h=:path:/a;:method:GET", {"h": {":path": "/a", ":method": "GET"}}),
        ("stringmap", "empty=", {"empty": {}}),
        ("ip", "a=10.0.0.1,b=::1", {"a": bytes([10, 0, 0, 1]), "b": ipaddress.ip_address("::1").packed}),
    ],
)
def test_typed_flags_parse_each_item(kind: str, text: str, expected: dict) -> None:
    values = parse_attribute_flag("-x", kind, text)
    assert values == expected
    for name, value in expected.items():
        assert type(values[name]) is type(value), name


def test_timestamp_keeps_nanoseconds_and_duration_type() -> None:
    values = parse_attribute_flag("-t", "timestamp", "t=2017-01-01T00:00:00.000000001Z")
    assert values["t"] - Timestamp.parse("2017-01-01T00:00:00Z") == 1
    assert str(parse_attribute_flag("--duration", "duration", "d=1.5s")["d"]) == "1.5s"


# -- errors ---------------------------------------------------------------------------------------------


_TS = "is not an RFC 3339 timestamp (like 2017-01-01T00:00:00Z)"
_HEX = "is not a list of hex bytes (like 0a:ff)"


@pytest.mark.parametrize(
    ("flag", "kind", "text", "message"),
    [
        ("-i", "int64", "x=abc", "-i: 'x=abc': 'abc' is not an int64"),
        ("-i", "int64", "x=1.5", "-i: 'x=1.5': '1.5' is not an int64"),
        ("-i", "int64", "x= 1", "-i: 'x= 1': ' 1' is not an int64"),
        ("-i", "int64", "x=1_000", "-i: 'x=1_000': '1_000' is not an int64"),
        ("-i", "int64", "x=9223372036854775808",
         "-i: 'x=9223372036854775808': '9223372036854775808' is out of the int64 range"),
        ("-d", "double", "x=one", "-d: 'x=one': 'one' is not a double"),
        ("-d", "double", "x=1e400", "-d: 'x=1e400': '1e400' is out of the double range"),
        ("-b", "bool", "x=yes", "-b: 'x=yes': 'yes' is not a bool (true or false)"),
        ("-t", "timestamp", "x=2017-01-01", f"-t: 'x=2017-01-01': '2017-01-01' {_TS}"),
        ("-t", "timestamp", "x=2017-01-01T00:00:00",
         f"-t: 'x=2017-01-01T00:00:00': '2017-01-01T00:00:00' {_TS}"),
        ("--duration", "duration", "x=10",
         "--duration: 'x=10': '10' is not a Go duration (like 10ms or 1h5m)"),
        ("--bytes", "bytes", "x=0a:zz", f"--bytes: 'x=0a:zz': '0a:zz' {_HEX}: bad byte 'zz'"),
        ("--bytes", "bytes", "x=100", f"--bytes: 'x=100': '100' {_HEX}: bad byte '100'"),
        ("--bytes", "bytes", "x=0a::0b", f"--bytes: 'x=0a::0b': '0a::0b' {_HEX}: bad byte ''"),
        ("--bytes", "bytes", "x=0x0a", f"--bytes: 'x=0x0a': '0x0a' {_HEX}: bad byte '0x0a'"),
        ("--stringmap", "stringmap", "x=k1:v1;k2",
         "--stringmap: 'x=k1:v1;k2': 'k1:v1;k2' is not a string map (k1:v1;k2:v2): 'k2' has no ':'"),
        ("--ip-attributes", "ip", "x=10.0.0.256",
         "--ip-attributes: 'x=10.0.0.256': '10.0.0.256' is not an IPv4 or IPv6 address"),
        ("-s", "string", "novalue", "-s: 'novalue': expected name=value"),
        ("-s", "string", "=v", "-s: '=v': the name before '=' is empty"),
        ("-s", "string", "a=1,", "-s: '': expected name=value"),
        ("-s", "string", "", "-s: '': expected name=value"),
    ],
)  # fmt: skip
def test_malformed_items_name_the_flag_and_the_item(flag: str, kind: str, text: str, message: str) -> None:
    with pytest.raises(AttributeFlagError) as e:
        parse_attribute_flag(flag, kind, text)
    assert str(e.value) == message


# -- guessing (-a) --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1),
        ("-12", -12),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("true", True),
        ("false", False),
        ("2017-01-01T00:00:00Z", Timestamp.parse("2017-01-01T00:00:00Z")),
        ("10ms", Duration(10_000_000)),
        ("1h5m", Duration(3_900 * 10**9)),
        ("0a:0b", b"\x0a\x0b"),
        ("k:v;k2:v2", {"k": "v", "k2": "v2"}),
        ("hello", "hello"),
        ("", ""),
        ("10.0.0.1", "10.0.0.1"),  # an IP only becomes bytes for an IP_ADDRESS attribute, see below
        ("/reviews/1", "/reviews/1"),
    ],
)
def test_guess_follows_mixc_order(text: str, expected: object) -> None:
    value = guess_value(text)
    assert value == expected
    assert type(value) is type(expected)


def test_guess_order_prefers_earlier_types() -> None:
    # "0" is an int64, a bool and a duration: int64 comes first; "t" is a bool before a string;
    # "ab" is a byte before a string (mixc's quirk: use -s for such strings).
    assert type(guess_value("0")) is int
    assert guess_value("t") is True
    assert guess_value("ab") == b"\xab"
    assert parse_attribute_flag("-s", "string", "n=ab") == {"n": "ab"}


def test_ip_text_for_an_ip_address_attribute_becomes_bytes() -> None:
    # source.ip and destination.ip are IP_ADDRESS in the built-in manifest.
    values = parse_attribute_flag("-a", "any", "source.ip=10.0.0.1,destination.ip=fe80::1,n=10.0.0.1")
    assert values["source.ip"] == bytes([10, 0, 0, 1])
    assert values["destination.ip"] == ipaddress.ip_address("fe80::1").packed
    assert values["n"] == "10.0.0.1"  # not in the manifest: stays a string
    assert parse_attribute_flag("-s", "string", "source.ip=10.0.0.2") == {"source.ip": bytes([10, 0, 0, 2])}
    # Something that is not an IP falls back to the flag's own rule.
    assert parse_attribute_flag("-a", "any", "source.ip=0a:00:00:01") == {"source.ip": bytes([10, 0, 0, 1])}
    assert parse_attribute_flag("-s", "string", "source.ip=unknown") == {"source.ip": "unknown"}


def test_every_kind_has_a_flag_and_the_issue_aliases() -> None:
    options = {o for kind in attrs.ATTRIBUTE_KINDS for o in kind.options}
    for option in (
        "-s",
        "-i",
        "-d",
        "-b",
        "-t",
        "-a",
        "--duration",
        "--bytes",
        "--stringmap",
        "--ip-attributes",
    ):
        assert option in options


# -- quotas ---------------------------------------------------------------------------------------------


def test_quotas() -> None:
    assert parse_quotas("-q", "rq=1,other=250") == {"rq": 1, "other": 250}
    with pytest.raises(AttributeFlagError, match=r"^-q: 'rq=x': 'x' is not an int64$"):
        parse_quotas("-q", "rq=x")
    with pytest.raises(AttributeFlagError, match=r"^-q: 'rq=-1': a quota amount cannot be negative$"):
        parse_quotas("-q", "rq=-1")
    with pytest.raises(AttributeFlagError, match=r"^-q: 'rq': expected name=value$"):
        parse_quotas("-q", "rq")


# -- the command line -----------------------------------------------------------------------------------


def _parse(*argv: str):
    return build_parser().parse_args(list(argv))


def test_command_line_collects_all_attribute_flags_in_order() -> None:
    args = _parse(
        "check",
        "-s", "a=x", "-i", "b=1", "-d", "c=1.5", "-b", "d=true", "-t", "e=2017-01-01T00:00:00Z",
        "--duration", "f=1s", "--bytes", "g=01", "--stringmap", "h=k:v", "--ip-attributes", "i=::1",
        "--duration-attributes", "f2=2s", "--bytes-attributes", "g2=02", "--stringmap-attributes", "h2=k:w",
        "-a", "j=7", "-s", "a=later",
    )  # fmt: skip
    values = args.attribute_values
    assert values == {
        "a": "later",  # a later flag wins a name
        "b": 1,
        "c": 1.5,
        "d": True,
        "e": Timestamp.parse("2017-01-01T00:00:00Z"),
        "f": Duration(10**9),
        "g": b"\x01",
        "h": {"k": "v"},
        "i": ipaddress.ip_address("::1").packed,
        "f2": Duration(2 * 10**9),
        "g2": b"\x02",
        "h2": {"k": "w"},
        "j": 7,
    }
    assert args.global_dictionary is True
    assert args.mixer == "localhost:9091"
    assert (args.repeat, args.concurrency, args.json) == (1, 1, False)


def test_mixc_spellings_are_accepted() -> None:
    args = _parse(
        "report", "--string_attributes", "a=x", "--int64_attributes", "b=2", "--report_batch_size", "3"
    )
    assert args.attribute_values == {"a": "x", "b": 2}
    assert args.report_batch_size == 3


def test_usage_error_names_the_flag_as_typed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        _parse("check", "--int64-attributes", "x=abc")
    assert e.value.code == 2
    assert (
        "mixerd check: error: --int64-attributes: 'x=abc': 'abc' is not an int64" in capsys.readouterr().err
    )
    with pytest.raises(SystemExit) as e:
        _parse("report", "-r", "0")
    assert e.value.code == 2
    assert "invalid positive integer value: '0'" in capsys.readouterr().err


# -- encoding: what the flags put on the wire -------------------------------------------------------------

_ALL_TYPES = {
    "destination.service.host": "reviews.default.svc.cluster.local",
    "request.path": "/reviews/1",
    "response.code": 200,
    "custom.ratio": 0.25,
    "connection.mtls": True,
    "request.time": Timestamp.parse("2017-01-01T00:00:00.123456789Z"),
    "response.duration": Duration(10_000_000),
    "source.ip": bytes([10, 0, 0, 1]),
    "request.headers": {":path": "/reviews/1", "x-user": "jason"},
}


def _indices(msg) -> list[int]:
    """Every word index in a CompressedAttributes: names, string values, map keys and values."""
    out = []
    for field in ("strings", "int64s", "doubles", "bools", "timestamps", "durations", "bytes", "string_maps"):
        out += list(getattr(msg, field).keys())
    out += list(msg.strings.values())
    for entries in msg.string_maps.values():
        for k, v in entries.entries.items():
            out += [k, v]
    return out


def test_check_request_round_trips_with_the_global_dictionary() -> None:
    request = build_check_request(_ALL_TYPES, len(GLOBAL_WORDS), {"rq": 3}, best_effort=True)
    assert request.global_word_count == 222
    assert decode_attributes(request.attributes) == _ALL_TYPES
    # Known words use global indices: fewer words in the message than distinct strings.
    assert any(i >= 0 for i in _indices(request.attributes))
    assert "destination.service.host" not in request.attributes.words
    assert request.quotas["rq"].amount == 3 and request.quotas["rq"].best_effort is True


def test_without_the_global_dictionary_every_word_is_in_the_message() -> None:
    request = build_check_request(_ALL_TYPES, 0)
    assert request.global_word_count == 0
    assert decode_attributes(request.attributes) == _ALL_TYPES
    assert _indices(request.attributes)
    assert all(i < 0 for i in _indices(request.attributes))
    assert "destination.service.host" in request.attributes.words


def test_flag_values_round_trip_through_the_wire() -> None:
    args = _parse(
        "check",
        "-a", "n=1,x=1.5,b=true,t=2017-01-01T00:00:00Z,d=10ms,y=0a:0b,m=k:v;k2:v2,s=hello,source.ip=10.0.0.1",
    )  # fmt: skip
    for gwc in (222, 0):
        decoded = decode_attributes(build_check_request(args.attribute_values, gwc).attributes)
        assert decoded == {
            "n": 1,
            "x": 1.5,
            "b": True,
            "t": Timestamp.parse("2017-01-01T00:00:00Z"),
            "d": Duration(10_000_000),
            "y": b"\x0a\x0b",
            "m": {"k": "v", "k2": "v2"},
            "s": "hello",
            "source.ip": bytes([10, 0, 0, 1]),
        }
        assert {k: type(v) for k, v in decoded.items()} == {
            k: type(v) for k, v in args.attribute_values.items()
        }


@pytest.mark.parametrize("delta", [False, True])
@pytest.mark.parametrize("gwc", [222, 0])
def test_report_batch_round_trips(delta: bool, gwc: int) -> None:
    request = build_report_request(_ALL_TYPES, 3, gwc, delta=delta)
    assert len(request.attributes) == 3
    assert request.global_word_count == gwc
    assert request.repeated_attributes_semantics == (0 if delta else 1)  # DELTA_ENCODING = 0
    assert [bag for _, bag in decode_report(request)] == [_ALL_TYPES] * 3
    if delta:  # nothing changes between the copies, so the later ones are empty
        assert [len(decode_attributes(a, list(request.default_words))) for a in request.attributes] == [
            9,
            0,
            0,
        ]
    if gwc == 0:
        assert all(i < 0 for element in request.attributes for i in _indices(element))


def test_dedup_ids_count_up_from_one_uuid() -> None:
    ids = DedupIds()
    first, second = ids(), ids()
    assert first[:-1] == second[:-1] and len(first) == 37
    assert (first[-1], second[-1]) == ("0", "1")
    fixed = DedupIds("same")
    assert fixed() == fixed() == "same"
