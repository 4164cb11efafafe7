"""CEXL parsing: Go's grammar, precedence and error texts; Mixer's rewrite into Constant/Variable/Function.

The error texts were checked against Mixer 1.4's parser (Go's parser.ParseExpr, then Mixer's rewrite).
"""

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
        ("a &^ b % c << d", "(REM(($a, $b), $c), $d)"),  # Mixer has no name for &^, <<, >>
        ("a ^ b & c >> d / e", "XOR($a, QUO((AND($b, $c), $d), $e))"),
        ("&a", "AND($a)"),
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
    ("text", "message", "position"),
    [
        ("a = 2", "1:3: expected '==', found '='", 2),  # Go reads `=` as a mistyped `==`
        ("a.if", "1:3: expected selector or type assertion, found 'if'", 2),
        ("if", "1:1: expected operand, found 'if'", 0),
        ("", "1:1: expected operand, found 'EOF'", 0),
        ("a +", "1:4: expected operand, found 'EOF'", 3),
        ("(a", "1:3: expected ')', found newline", 2),  # Go's semicolon at the end of the line
        ("a b", "1:3: expected 'EOF', found b", 2),  # a literal is named by its text
        ('a "x"', "1:3: expected 'EOF', found \"x\"", 2),
        ("a 2", "1:3: expected 'EOF', found 2", 2),
        ("f(a b)", "1:5: missing ',' in argument list", 4),
        ('"abc', "1:1: string literal not terminated", 0),
        ("'ab'", "1:1: illegal rune literal", 0),
        (r'"\q"', "1:3: unknown escape sequence", 2),  # at the character after the backslash
        (r'"\xg0"', "1:4: illegal character U+0067 'g' in escape sequence", 3),
        ("a @ b", "1:3: illegal character U+0040 '@'", 2),
        ("a @ @", "1:3: illegal character U+0040 '@' (and 1 more errors)", 2),
        ("+ ? ?", "1:3: illegal character U+003F '?' (and 1 more errors)", 2),
        (">= ?", "1:1: expected operand, found '>=' (and 1 more errors)", 0),
        ("08", "1:2: invalid digit '8' in octal literal", 1),
        ("1e", "1:3: exponent has no digits", 2),
        ("1__0", "1:3: '_' must separate successive digits", 2),
        ("a\n== 1", "2:1: expected 'EOF', found '=='", 2),  # Go ends the expression at the newline
        ("\n", "1:2: expected operand, found 'EOF'", 1),
        ('"é" @', "1:6: illegal character U+0040 '@'", 4),  # Go counts columns in bytes
    ],
)
def test_go_parse_errors(text: str, message: str, position: int) -> None:
    with pytest.raises(ParseError) as info:
        parse(text)
    assert str(info.value) == f"unable to parse expression '{text}': {message}"
    assert info.value.position == position


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("0x10", 'strconv.ParseInt: parsing "0x10": invalid syntax', 0),
        ("0o7", 'strconv.ParseInt: parsing "0o7": invalid syntax', 0),
        ("1_000", 'strconv.ParseInt: parsing "1_000": invalid syntax', 0),
        ("99999999999999999999", 'strconv.ParseInt: parsing "99999999999999999999": value out of range', 0),
        ("1e400", 'strconv.ParseFloat: parsing "1e400": value out of range', 0),
        ("1i", "invalid syntax", 0),
        ("f(x).y", "unexpected expression: &ast.SelectorExpr{...}", 0),
        ("(a).b", "unexpected expression: &ast.SelectorExpr{...}", 1),
        ("(f)(x)", "unexpected expression: &ast.CallExpr{...}", 1),
        ("a[1:2]", "unexpected expression: &ast.SliceExpr{...}", 1),
        ("*a", "unexpected expression: &ast.StarExpr{...}", 0),
        ("a{1}", "unexpected expression: &ast.CompositeLit{...}", 1),
    ],
)
def test_mixer_rewrite_errors(text: str, message: str, position: int) -> None:
    """What Go parses but Mixer's rewrite refuses: its bare message (Mixer printed the Go AST in full)."""
    with pytest.raises(ParseError) as info:
        parse(text)
    assert str(info.value) == message
    assert info.value.position == position


def test_literals_as_mixer_reads_them() -> None:
    assert parse("0x1p-2") == Constant(0.25, ValueType.DOUBLE)  # strconv.ParseFloat takes hex floats
    assert parse("1_000.5") == Constant(1000.5, ValueType.DOUBLE)
    assert str(parse("'c' == \"10ms\"")) == "EQ('c', \"10ms\")"


def test_keywords_cannot_be_segments_but_true_can() -> None:
    assert parse("a.true") == Variable("a.true")
    with pytest.raises(ParseError):
        parse("a.func")


def test_a_method_may_follow_an_index() -> None:
    """Mixer refused `m["k"].startsWith(x)` (its rewrite took no index there); mixerd accepts it."""
    assert str(parse('m["k"].startsWith("x")')) == 'INDEX($m, "k"):startsWith("x")'
