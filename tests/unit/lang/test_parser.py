"""CEXL parsing: Go's grammar and precedence, Mixer's rewrite into Constant/Variable/Function."""

from __future__ import annotations

import pytest

from mixerd.attribute import Duration, ValueType
from mixerd.lang import ParseError, parse
from mixerd.lang.ast import Constant, Function, Variable


@pytest.mark.parametrize(
    ("text", "prefix"),
    [
        ('a | "x" == "y"', 'EQ(OR($a, "x"), "y")'),  # the quirk: | binds tighter than ==
        ("a == 1 || b == 2 && c", "LOR(EQ($a, 1), LAND(EQ($b, 2), $c))"),
        ("a + b * c", "ADD($a, MUL($b, $c))"),
        ("a - b - c", "SUB(SUB($a, $b), $c)"),
        ("a < b == c", "EQ(LT($a, $b), $c)"),
        ("(a | b) | c", "OR(OR($a, $b), $c)"),
        ("a | (b | c)", "OR($a, OR($b, $c))"),
        ("a &^ b % c << d", "SHL(REM(AND_NOT($a, $b), $c), $d)"),
        ("a ^ b & c >> d / e", "XOR($a, QUO(SHR(AND($b, $c), $d), $e))"),
        ("!a", "NOT($a)"),
        ("-a", "SUB($a)"),
        ("+a", "ADD($a)"),
        ("^a", "XOR($a)"),
        ("a.b.c", "$a.b.c"),
        ('request.headers["x"]', 'INDEX($request.headers, "x")'),
        ('a.b.startsWith("c")', '$a.b:startsWith("c")'),
        ('"x".startsWith(a)', '"x":startsWith($a)'),
        ('(a|b).endsWith("c")', 'OR($a, $b):endsWith("c")'),
        ('toLower(a).endsWith("c")', 'toLower($a):endsWith("c")'),
        ("f(a, b,)", "f($a, $b)"),
        ("size()", "size()"),
    ],
)
def test_shapes(text: str, prefix: str) -> None:
    assert str(parse(text)) == prefix


def test_method_target_is_attribute_without_last_selector() -> None:
    node = parse('a.b.startsWith("c")')
    assert node == Function("startsWith", Variable("a.b"), (Constant("c", ValueType.STRING),))


@pytest.mark.parametrize(
    ("text", "value", "vtype"),
    [
        ("42", 42, ValueType.INT64),
        ("007", 7, ValueType.INT64),  # Go's ParseInt(.., 10) reads a leading-zero literal as decimal
        ("1.5", 1.5, ValueType.DOUBLE),
        ("1e3", 1000.0, ValueType.DOUBLE),
        (".5", 0.5, ValueType.DOUBLE),
        ('"abc"', "abc", ValueType.STRING),
        ("`raw\\n`", "raw\\n", ValueType.STRING),
        ("'c'", "c", ValueType.STRING),
        ("'\\n'", "\n", ValueType.STRING),
        ("true", True, ValueType.BOOL),
        ("TRUE", True, ValueType.BOOL),
        ("False", False, ValueType.BOOL),
        ('"10ms"', Duration(10_000_000), ValueType.DURATION),
        ('"1h5m"', Duration(3_900_000_000_000), ValueType.DURATION),
        ('"0"', Duration(0), ValueType.DURATION),
        ("`2s`", Duration(2_000_000_000), ValueType.DURATION),
        ('"10 ms"', "10 ms", ValueType.STRING),
    ],
)
def test_literals(text: str, value: object, vtype: ValueType) -> None:
    node = parse(text)
    assert isinstance(node, Constant)
    assert node.type == vtype
    assert node.value == value
    assert type(node.value) is type(value)


def test_escape_values() -> None:
    node = parse(r'"a\tb\x41\u00e9\101\""')
    assert isinstance(node, Constant)
    assert node.value == 'a\tbAéA"'


@pytest.mark.parametrize(
    ("text", "fragment", "position"),
    [
        ("a = 2", "1:3: expected 'EOF', found '='", 2),
        ("0x10", "invalid INT64 literal 0x10", 0),
        ("0o7", "invalid INT64 literal", 0),
        ("1_000", "invalid INT64 literal", 0),
        ("99999999999999999999", "out of range", 0),
        ("a.if", "1:3:", 2),
        ("if", "expected operand", 0),
        ("", "expected operand, found 'EOF'", 0),
        ("a +", "1:4: expected operand", 3),
        ("(a", "expected ')'", 2),
        ('"abc', "string literal not terminated", 0),
        ("'ab'", "illegal rune literal", 0),
        (r'"\q"', "unknown escape sequence", 1),
        ("a @ b", "illegal character", 2),
        ("f(x).y", "unexpected expression", 5),
        ("(a).b", "unexpected expression", 4),
        ("(f)(x)", "unexpected expression", 3),
        ("a[1:2]", "slice", 3),
        ("1i", "unsupported literal", 0),
        ("a\n== ", "1:2: expected 'EOF', found newline", 1),
    ],
)
def test_errors_name_position(text: str, fragment: str, position: int) -> None:
    with pytest.raises(ParseError) as info:
        parse(text)
    assert fragment in str(info.value)
    assert str(info.value).startswith(f"unable to parse expression '{text}': ")
    assert info.value.position == position


def test_keywords_cannot_be_segments_but_true_can() -> None:
    assert parse("a.true") == Variable("a.true")
    with pytest.raises(ParseError):
        parse("a.func")
