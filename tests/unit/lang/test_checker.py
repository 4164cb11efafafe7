"""CEXL type checking: Mixer's EvalType rules, order and error texts (checked against Mixer 1.4's code)."""

from __future__ import annotations

import pytest

from mixerd.attribute import BUILTIN_MANIFEST, ValueType
from mixerd.lang import FUNCTIONS, TypeCheckError, check, compile_expression, parse

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
        ("m == m", V.BOOL),  # Mixer's checker accepts it; its compiler does not (test_compiler_refuses)
        ("dn + dn", V.DNS_NAME),
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
        ("startsWith(s)", "invoking instance method without an instance: startsWith"),
        ("s.size()", "invoking regular function on instance method: size"),
        # A literal shows as written: quotes kept, a duration-looking string too.
        ('"1s" == s', 'EQ("1s", $s) arg 2 ($s) typeError got STRING, expected DURATION'),
        ("'c' == a", "EQ('c', $a) arg 2 ($a) typeError got INT64, expected STRING"),
        ("1.5e2 == a", "EQ(1.5e2, $a) arg 2 ($a) typeError got INT64, expected DOUBLE"),
        ("TRUE == a", "EQ(true, $a) arg 2 ($a) typeError got INT64, expected BOOL"),
        # Methods: arguments are counted without the target, which has its own text.
        ("s.endsWith(1)", "$s:endsWith(1) arg 1 (1) typeError got INT64, expected STRING"),
        ('a.startsWith("x")', '$a:startsWith("x") target typeError got INT64, expected STRING'),
        ('"x".matches()', '"x":matches() arity mismatch. Got 0 arg(s), expected 1 arg(s)'),
        # The target is typed before the arguments are counted.
        ("nope.startsWith()", "unknown attribute nope"),
        ("ip_equal(i, i)", "unknown function: ip_equal"),  # Mixer's internal externs are not callable
        ("a << 1", "unknown function: "),  # Mixer has no name for <<, >>, &^
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
        "timestamp", "dnsName", "email", "uri", "emptyStringMap",
    }  # fmt: skip
    assert set(FUNCTIONS) == expected
    assert {n for n, f in FUNCTIONS.items() if f.instance} == {"matches", "startsWith", "endsWith"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("m == m", "internal compiler error -- equality for type not yet implemented: interface"),
        (
            "m != emptyStringMap()",
            "internal compiler error -- equality for type not yet implemented: interface",
        ),
        ("b < b", "internal compiler error -- less than for type not yet implemented: bool"),
        ("i >= i", "internal compiler error -- greater or equal for type not yet implemented: interface"),
        ("b + b", "internal compiler error -- Add for type not yet implemented: bool"),
        ('"1s" + du', "internal compiler error -- Add for type not yet implemented: duration"),
        ("t + t", "internal compiler error -- Add for type not yet implemented: interface"),
        # Children first: the inner operator is reported.
        ("(b < b) == (m == m)", "internal compiler error -- less than for type not yet implemented: bool"),
    ],
)
def test_compiler_refuses_what_mixer_had_no_instruction_for(text: str, message: str) -> None:
    with pytest.raises(TypeCheckError) as info:
        compile_expression(text, M)
    assert str(info.value) == message


def test_type_errors_come_before_compiler_errors() -> None:
    """Mixer type-checked the whole expression before generating code."""
    with pytest.raises(TypeCheckError, match=r"arg 2 \(1\) typeError got INT64, expected BOOL"):
        compile_expression("(b + b) == 1", M)


@pytest.mark.parametrize("text", ["dn < dn", "e >= e", "u + u", 'du == "1s"', 'du < "1s"'])
def test_what_mixer_compiled(text: str) -> None:
    """Ordering and + on DNS names, e-mails and URIs work as on strings (Mixer's string instructions);
    DURATION comparisons are mixerd's addition (docs/config.md)."""
    compile_expression(text, M)
