"""Value types, Go durations and RFC 3339 timestamps (MIXER.md 3.1; Go's time package semantics)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixerd.attribute import Duration, Timestamp, ValueType
from mixerd.attribute.godur import format_go_duration, parse_go_duration

NS = 1_000_000_000
MS = 1_000_000
US = 1_000
MINUTE = 60 * NS
HOUR = 60 * MINUTE
INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)
# 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999999Z, the RFC 3339 range.
YEAR_1 = -62_135_596_800 * NS
YEAR_9999_END = 253_402_300_800 * NS - 1


def test_value_type_numbers():
    assert {t.name: int(t) for t in ValueType} == {
        "VALUE_TYPE_UNSPECIFIED": 0,
        "STRING": 1,
        "INT64": 2,
        "DOUBLE": 3,
        "BOOL": 4,
        "TIMESTAMP": 5,
        "IP_ADDRESS": 6,
        "EMAIL_ADDRESS": 7,
        "URI": 8,
        "DNS_NAME": 9,
        "DURATION": 10,
        "STRING_MAP": 11,
    }


# -- Go duration parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("0", 0),
        ("+0", 0),
        ("-0", 0),
        ("0s", 0),
        ("0.0s", 0),
        ("1ns", 1),
        ("1us", US),
        ("1\u00b5s", US),  # micro sign
        ("1\u03bcs", US),  # Greek small letter mu
        ("300ms", 300 * MS),
        ("1s", NS),
        ("1.5s", 1_500_000_000),
        (".5s", 500_000_000),
        ("1.s", NS),
        ("+1s", NS),
        ("-1.5h", -(HOUR + 30 * MINUTE)),
        ("1h5m", HOUR + 5 * MINUTE),
        ("2h45m30.5s", 2 * HOUR + 45 * MINUTE + 30 * NS + 500_000_000),
        ("1h1h", 2 * HOUR),
        ("5m1h", HOUR + 5 * MINUTE),
        ("1.5m", 90 * NS),
        ("0.000000001s", 1),
        ("0.0000000019s", 1),  # below a nanosecond is truncated
        ("1.000000001s", NS + 1),
        ("0.1h", 6 * MINUTE),
        ("100.00100ms", 100 * MS + 1 * US),
        ("9223372036854775807ns", INT64_MAX),
        ("-9223372036854775808ns", INT64_MIN),
        ("2562047h47m16.854775807s", INT64_MAX),
        ("-2562047h47m16.854775808s", INT64_MIN),
    ],
)
def test_parse_go_duration(text, nanos):
    assert parse_go_duration(text) == nanos
    parsed = Duration.parse(text)
    assert type(parsed) is Duration
    assert int(parsed) == nanos


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "invalid duration"),
        ("-", "invalid duration"),
        ("+", "invalid duration"),
        ("1", "missing unit"),
        ("1.", "missing unit"),
        ("1\u00b5", "unknown unit"),
        ("0.0", "missing unit"),
        ("00", "missing unit"),
        ("1.5.5s", "missing unit"),
        ("s", "invalid duration"),
        (".s", "invalid duration"),
        ("-.s", "invalid duration"),
        ("--1s", "invalid duration"),
        ("+-1s", "invalid duration"),
        ("1x", "unknown unit"),
        ("1S", "unknown unit"),
        ("1sec", "unknown unit"),
        ("1e3s", "unknown unit"),
        ("1 s", "unknown unit"),
        (" 1s", "invalid duration"),
        ("1s ", "unknown unit"),
        ("1s-1s", "unknown unit"),
        ("\u0661s", "invalid duration"),  # a non-ASCII digit is not a digit for Go
        ("9223372036854775808ns", "invalid duration"),
        ("2562048h", "invalid duration"),
        ("-9223372036854775809ns", "invalid duration"),
    ],
)
def test_parse_go_duration_errors(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_go_duration(text)
    with pytest.raises(ValueError):
        Duration.parse(text)


# -- Go duration formatting (Duration.String) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (999, "999ns"),
        (US, "1\u00b5s"),
        (1_500, "1.5\u00b5s"),
        (1_001, "1.001\u00b5s"),
        (999_999, "999.999\u00b5s"),
        (MS, "1ms"),
        (300 * MS, "300ms"),
        (100_500_000, "100.5ms"),
        (1_000_001, "1.000001ms"),
        (NS, "1s"),
        (NS + 1, "1.000000001s"),
        (1_500_000_000, "1.5s"),
        (59 * NS, "59s"),
        (MINUTE, "1m0s"),
        (90 * NS, "1m30s"),
        (HOUR, "1h0m0s"),
        (HOUR + 5 * MINUTE + 500 * MS, "1h5m0.5s"),
        (2 * HOUR + 45 * MINUTE + 30_500 * MS, "2h45m30.5s"),
        (100 * HOUR, "100h0m0s"),
        (-1, "-1ns"),
        (-1_500, "-1.5\u00b5s"),
        (-1_500_000_000, "-1.5s"),
        (-(HOUR + 30 * MINUTE), "-1h30m0s"),
        (INT64_MAX, "2562047h47m16.854775807s"),
        (INT64_MIN, "-2562047h47m16.854775808s"),
    ],
)
def test_format_go_duration(nanos, text):
    assert format_go_duration(nanos) == text
    assert str(Duration(nanos)) == text
    assert repr(Duration(nanos)) == f"Duration({text!r})"


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=INT64_MIN, max_value=INT64_MAX))
def test_duration_format_parse_round_trip(nanos):
    assert parse_go_duration(format_go_duration(nanos)) == nanos


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_duration_round_trip_near_zero(nanos):
    assert Duration.parse(str(Duration(nanos))) == nanos


# -- Duration seconds/nanos: google.protobuf.Duration's sign rule ---------------------------------------


@pytest.mark.parametrize(
    ("nanos", "parts"),
    [
        (0, (0, 0)),
        (1, (0, 1)),
        (-1, (0, -1)),
        (1_500_000_000, (1, 500_000_000)),
        (-1_500_000_000, (-1, -500_000_000)),
        (-NS, (-1, 0)),
        (-(10**17 + 999_999_999), (-(10**8), -999_999_999)),
        (INT64_MIN, (-9_223_372_036, -854_775_808)),
        (INT64_MAX, (9_223_372_036, 854_775_807)),
    ],
)
def test_duration_seconds_and_nanos(nanos, parts):
    d = Duration(nanos)
    assert (d.seconds, d.nanos) == parts
    assert Duration.from_parts(*parts) == nanos


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=INT64_MIN, max_value=INT64_MAX))
def test_duration_parts_follow_the_protobuf_rule(nanos):
    d = Duration(nanos)
    assert d.seconds * NS + d.nanos == nanos
    assert -NS < d.nanos < NS
    # seconds and nanos never have opposite signs
    assert d.seconds * d.nanos >= 0
    assert abs(d.seconds) == abs(nanos) // NS


def test_duration_timedelta_conversions():
    assert Duration.from_timedelta(dt.timedelta(seconds=-1, microseconds=250)) == -999_750_000
    assert Duration(1_500_000_999).to_timedelta() == dt.timedelta(seconds=1, microseconds=500_000)
    assert Duration(1_500_000_000).total_seconds() == 1.5


# -- Timestamp -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2017-01-01T00:00:00Z", 1_483_228_800 * NS),
        ("2017-01-01T00:00:00.5Z", 1_483_228_800 * NS + 500_000_000),
        ("2017-01-01T00:00:00.12Z", 1_483_228_800 * NS + 120_000_000),
        ("2017-01-01T00:00:00.123Z", 1_483_228_800 * NS + 123_000_000),
        ("2017-01-01T00:00:00.1234Z", 1_483_228_800 * NS + 123_400_000),
        ("2017-01-01T00:00:00.12345Z", 1_483_228_800 * NS + 123_450_000),
        ("2017-01-01T00:00:00.123456Z", 1_483_228_800 * NS + 123_456_000),
        ("2017-01-01T00:00:00.1234567Z", 1_483_228_800 * NS + 123_456_700),
        ("2017-01-01T00:00:00.12345678Z", 1_483_228_800 * NS + 123_456_780),
        ("2017-01-01T00:00:00.123456789Z", 1_483_228_800 * NS + 123_456_789),
        ("2017-01-01T00:00:00.000000001Z", 1_483_228_800 * NS + 1),
        ("2017-01-01T02:00:00+02:00", 1_483_228_800 * NS),
        ("2016-12-31T19:00:00.25-05:00", 1_483_228_800 * NS + 250_000_000),
        ("2017-01-01T05:30:00+05:30", 1_483_228_800 * NS),
        ("2017-01-01T00:00:00+00:00", 1_483_228_800 * NS),
        ("2017-01-01T00:00:00-00:00", 1_483_228_800 * NS),
        ("2016-02-29T12:00:00Z", 1_456_747_200 * NS),
        ("1969-12-31T23:59:59.999999999Z", -1),
        ("1969-12-31T23:59:59Z", -NS),
        ("1900-01-01T00:00:00Z", -2_208_988_800 * NS),
        ("0001-01-01T00:00:00Z", YEAR_1),
        ("9999-12-31T23:59:59.999999999Z", YEAR_9999_END),
    ],
)
def test_timestamp_parse(text, nanos):
    got = Timestamp.parse(text)
    assert type(got) is Timestamp
    assert int(got) == nanos


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2017-01-01",
        "2017-01-01T00:00:00",
        "2017-01-01 00:00:00Z",
        "2017-01-01T00:00Z",
        "2017-01-01T0:00:00Z",
        "2017-1-01T00:00:00Z",
        "17-01-01T00:00:00Z",
        "20170101T000000Z",
        "2017-13-01T00:00:00Z",
        "2017-02-29T00:00:00Z",
        "2017-01-32T00:00:00Z",
        "2017-01-01T25:00:00Z",
        "2017-01-01T00:60:00Z",
        "2017-01-01T00:00:60Z",
        "2017-01-01T00:00:00.Z",
        "2017-01-01T00:00:00.1a2Z",
        "2017-01-01T00:00:00,5Z",
        "2017-01-01T00:00:00.\u0661Z",
        "2017-01-01T00:00:00ZZ",
        "2017-01-01T00:00:00+0200",
        "2017-01-01T00:00:00+02",
        "2017-01-01T00:00:00+02:00:30",
        "2017-01-01T00:00:00+2:00",
        "2017-01-01T00:00:00 +02:00",
        "not a timestamp",
    ],
)
def test_timestamp_parse_rejects(text):
    with pytest.raises(ValueError):
        Timestamp.parse(text)


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1, "1970-01-01T00:00:00.000000001Z"),
        (1_483_228_800 * NS + 500_000_000, "2017-01-01T00:00:00.5Z"),
        (1_483_228_800 * NS + 123_456_780, "2017-01-01T00:00:00.12345678Z"),
        (-1, "1969-12-31T23:59:59.999999999Z"),
        (-500_000_000, "1969-12-31T23:59:59.5Z"),
        (YEAR_1, "0001-01-01T00:00:00Z"),
        (YEAR_1 + 999 * 365 * 86_400 * NS, "0999-05-04T00:00:00Z"),
        (YEAR_9999_END, "9999-12-31T23:59:59.999999999Z"),
    ],
)
def test_timestamp_isoformat(nanos, text):
    assert Timestamp(nanos).isoformat() == text
    assert repr(Timestamp(nanos)) == f"Timestamp({text!r})"


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=YEAR_1, max_value=YEAR_9999_END))
def test_timestamp_isoformat_parse_round_trip(nanos):
    text = Timestamp(nanos).isoformat()
    assert Timestamp.parse(text) == nanos


@settings(max_examples=100, deadline=None)
@given(
    st.integers(min_value=YEAR_1 + 86_400 * NS, max_value=YEAR_9999_END - 86_400 * NS),
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
)
def test_timestamp_parse_with_offsets(nanos, offset_minutes):
    """The same instant written in another zone parses to the same nanoseconds."""
    t = Timestamp(nanos)
    zone = dt.timezone(dt.timedelta(minutes=offset_minutes))
    local = (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=t.seconds)).astimezone(zone)
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    text = f"{local.replace(tzinfo=None).isoformat()}.{t.nanos:09d}{sign}{hours:02d}:{minutes:02d}"
    assert Timestamp.parse(text) == nanos


@pytest.mark.parametrize(
    ("nanos", "parts"),
    [
        (0, (0, 0)),
        (1_500_000_000, (1, 500_000_000)),
        (-1, (-1, 999_999_999)),
        (-500_000_000, (-1, 500_000_000)),
        (-NS, (-1, 0)),
    ],
)
def test_timestamp_seconds_and_nanos_follow_protobuf_timestamp(nanos, parts):
    """google.protobuf.Timestamp: nanos is always 0..999999999, seconds rounds down."""
    t = Timestamp(nanos)
    assert (t.seconds, t.nanos) == parts
    assert Timestamp.from_parts(*parts) == nanos


def test_timestamp_datetime_conversions():
    aware = dt.datetime(2017, 1, 1, 2, 0, 0, 250, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert Timestamp.from_datetime(aware) == 1_483_228_800 * NS + 250_000
    assert Timestamp.from_datetime(dt.datetime(1969, 12, 31, 23, 59, 59, tzinfo=dt.UTC)) == -NS
    with pytest.raises(ValueError, match="time zone"):
        Timestamp.from_datetime(dt.datetime(2017, 1, 1))
    assert Timestamp(1_483_228_800 * NS + 250_999).to_datetime() == dt.datetime(
        2017, 1, 1, 0, 0, 0, 250, tzinfo=dt.UTC
    )
    assert Timestamp(-1).to_datetime() == dt.datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC)
