"""CEXL type checking: Mixer's EvalType rules and error texts."""

from __future__ import annotations

import pytest

from mixerd.attribute import BUILTIN_MANIFEST, ValueType
from mixerd.lang import FUNCTIONS, TypeCheckError, check, parse

V = ValueType
M = {
    "a": V.INT64,
    "d": V.DOUBLE,
    "s": V.STRING,
    "b": V.BOOL,
    "m": V.STRING_MAP,
    "t": V.TIMESTAMP,
    "du": V.DURATION,
    "i": V.IP_ADDRESS,
    "dn": V.DNS_NAME,
    "e": V.EMAIL_ADDRESS,
    "u": V.URI,
}


@pytest.mark.parametrize(
    ("text", "vtype"),
    [
        ("a == 2", V.BOOL),
        ("a | 2", V.INT64),
        ('m["k"]', V.STRING),
        ('m["k"] | s', V.STRING),
        ("conditional(b, a, 3)", V.INT64),
        ('conditionalString(b, s, "x")', V.STRING),
        ("s + s", V.STRING),
        ("d + 1.5", V.DOUBLE),
        ('du < "1s"', V.BOOL),
        ("t >= t", V.BOOL),
        ("size(s)", V.INT64),
        ('ip("1.2.3.4") == i', V.BOOL),
        ("dnsName(s) == dn", V.BOOL),
        ('s.matches("x")', V.BOOL),
        ("emptyStringMap()", V.STRING_MAP),
        ("m | emptyStringMap()", V.STRING_MAP),
        ("size(s, 1, true)", V.INT64),  # quirk: too many args are not reported
        ("timestamp_lt(t, t)", V.BOOL),
        ("uri_equal(u, u) && email_equal(e, e)", V.BOOL),
        ("request.size", V.INT64),
    ],
)
def test_types(text: str, vtype: ValueType) -> None:
    manifest = {**M, **BUILTIN_MANIFEST}
    assert check(text, manifest) == vtype
    assert check(parse(text), manifest) == vtype


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a == true", "EQ($a, true) arg 2 (true) typeError got BOOL, expected INT64"),
        ('a | "x"', 'OR($a, "x") arg 2 ("x") typeError got STRING, expected INT64'),
        ("conditional(a, 1, 2)", "conditional($a, 1, 2) arg 1 ($a) typeError got INT64, expected BOOL"),
        (
            'conditional(b, 1, "x")',
            'conditional($b, 1, "x") arg 3 ("x") typeError got STRING, expected INT64',
        ),
        ("size(a)", "size($a) arg 1 ($a) typeError got INT64, expected STRING"),
        ("b && a", "LAND($b, $a) arg 2 ($a) typeError got INT64, expected BOOL"),
        ("m[1]", "INDEX($m, 1) arg 2 (1) typeError got INT64, expected STRING"),
        ('s["k"]', 'INDEX($s, "k") arg 1 ($s) typeError got STRING, expected STRING_MAP'),
        ("!b", "unknown function: NOT"),
        ("-a", "unknown function: SUB"),
        ("a * 2", "unknown function: MUL"),
        ("string(a)", "unknown function: string"),
        ("nope == 1", "unknown attribute nope"),
        ("size()", "size() arity mismatch. Got 0 arg(s), expected 1 arg(s)"),
        ("+a", "ADD($a) arity mismatch. Got 1 arg(s), expected 2 arg(s)"),
        ("m == m", "EQ($m, $m): EQ is not supported for type STRING_MAP"),
        ("b < b", "LT($b, $b): LT is not supported for type BOOL"),
        ("b + b", "ADD($b, $b): ADD is not supported for type BOOL"),
        ("startsWith(s)", "invoking instance method without an instance: startsWith"),
        ("s.size()", "invoking regular function on instance method: size"),
        ('"1s" == s', "EQ(1s, $s) arg 2 ($s) typeError got STRING, expected DURATION"),
    ],
)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(TypeCheckError) as info:
        check(text, M)
    assert str(info.value) == message


def test_error_carries_position() -> None:
    with pytest.raises(TypeCheckError) as info:
        check("a == true", M)
    assert info.value.position == 5
    with pytest.raises(TypeCheckError) as info:
        check("s == s || nope", M)
    assert info.value.position == 10


def test_function_table_covers_mixer() -> None:
    expected = {
        "EQ", "NEQ", "LT", "LEQ", "GT", "GEQ", "LAND", "LOR", "OR", "INDEX", "ADD", "conditional",
        "conditionalString", "size", "match", "matches", "startsWith", "endsWith", "toLower", "ip",
        "timestamp",
        "dnsName", "email", "uri", "emptyStringMap", "ip_equal", "timestamp_equal", "timestamp_lt",
        "timestamp_le", "timestamp_gt", "timestamp_ge", "dnsName_equal", "email_equal", "uri_equal",
    }  # fmt: skip
    assert set(FUNCTIONS) == expected
    assert {n for n, f in FUNCTIONS.items() if f.instance} == {"matches", "startsWith", "endsWith"}
