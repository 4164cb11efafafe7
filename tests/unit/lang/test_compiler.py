"""CEXL compilation: values, reference tracking (incl. short-circuits), `|` semantics, runtime errors."""

from __future__ import annotations

from typing import Any

import pytest

from mixerd.attribute import AttributeBag, Condition, Duration, Reference, Timestamp, ValueType
from mixerd.lang import EvaluationError, PatternError, compile_expression, externs

V = ValueType
M = {
    "a": V.INT64, "b": V.INT64, "s": V.STRING, "s2": V.STRING, "ok": V.BOOL, "m": V.STRING_MAP,
    "t": V.TIMESTAMP, "du": V.DURATION, "i": V.IP_ADDRESS, "dn": V.DNS_NAME, "e": V.EMAIL_ADDRESS,
    "u": V.URI, "d": V.DOUBLE,
}  # fmt: skip
E, A = Condition.EXACT, Condition.ABSENCE


def run(text: str, **values: Any) -> tuple[Any, list[Reference]]:
    bag = AttributeBag(values)
    result = compile_expression(text, M).evaluate(bag)
    return result, bag.references()


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ('s == "x"', {"s": "x"}, True),
        ("a + b", {"a": 2, "b": 3}, 5),
        ("a + 1", {"a": (1 << 63) - 1}, -(1 << 63)),  # int64 wraps as in Go
        ('s + "!"', {"s": "hi"}, "hi!"),
        ("d + 0.5", {"d": 1.0}, 1.5),
        ('du > "1s"', {"du": Duration(2_000_000_000)}, True),
        ('t < timestamp("2020-01-01T00:00:00Z")', {"t": Timestamp.parse("2019-01-01T00:00:00Z")}, True),
        ('i == ip("1.2.3.4")', {"i": b"\x00" * 10 + b"\xff\xff\x01\x02\x03\x04"}, True),
        ('dn == dnsName("Example.COM.")', {"dn": "example.com"}, True),
        ('e == email("joe@EXAMPLE.com")', {"e": "joe@example.com"}, True),
        ('e == email("Joe@example.com")', {"e": "joe@example.com"}, False),
        ('u == uri("HTTP://Example.com:80/x")', {"u": "http://example.com:80/x"}, True),
        ('u == uri("http://example.com:81/x")', {"u": "http://example.com:80/x"}, False),
        ('match(s, "*")', {"s": "q"}, True),
        ('match(s, "ab*")', {"s": "abc"}, True),
        ('match(s, "*bc")', {"s": "abc"}, True),
        ('match(s, "*b*")', {"s": "*bzz"}, True),  # trailing * is tested first: prefix "*b"
        ("match(s, s2)", {"s": "abc", "s2": "a*"}, True),
        ('"^a.c".matches(s)', {"s": "xxabc"}, False),
        ('"a.c".matches(s)', {"s": "xxabc"}, True),
        ("s2.matches(s)", {"s": "xxabc", "s2": "b"}, True),
        ('s.startsWith("ab") && s.endsWith("c")', {"s": "abc"}, True),
        ("toLower(s)", {"s": "AbC"}, "abc"),
        ("size(s)", {"s": "héllo"}, 6),
        ('conditional(ok, "y", "n")', {"ok": False}, "n"),
        ('conditionalString(ok, "y", "n")', {"ok": True}, "y"),
        ('m["k"]', {"m": {}}, ""),
        ("m | emptyStringMap()", {}, {}),
        ("a != 3", {"a": 3}, False),
    ],
)
def test_values(text: str, values: dict[str, Any], expected: Any) -> None:
    assert run(text, **values)[0] == expected


def test_short_circuit_records_only_what_was_read() -> None:
    assert run("a == 1 || b == 2", a=1, b=2) == (True, [Reference("a", E)])
    assert run("a == 1 || b == 2", a=0, b=2) == (True, [Reference("a", E), Reference("b", E)])
    assert run("a == 1 && b == 2", a=0) == (False, [Reference("a", E)])
    assert run("conditional(ok, s, s2)", ok=True, s="x") == ("x", [Reference("ok", E), Reference("s", E)])


def test_first_present_operand() -> None:
    assert run('s | s2 | "d"', s2="") == ("", [Reference("s", A), Reference("s2", E)])
    assert run('s | "d"', s="") == ("", [Reference("s", E)])  # an empty present string wins
    # Calls and constants are always present: the rest is never evaluated.
    assert run('"a".startsWith("b") | ok') == (False, [])
    assert run('m["k"] | s | "z"', m={"k": "v"}) == ("v", [Reference("m", E, "k")])


def test_map_key_falls_through_inside_or_only() -> None:
    assert run('m["k"] | "d"', m={}) == ("d", [Reference("m", A, "k")])
    assert run('m["k"] | "d"') == ("d", [Reference("m", A)])
    assert run('m["k"]', m={}) == ("", [Reference("m", A, "k")])
    assert run('emptyStringMap()["k"] | "d"') == ("d", [])


def test_map_index_under_or_with_an_absent_key_attribute() -> None:
    """Mixer looks the map up first, then the key, each able to fall through to the default."""
    assert run('m[s] | "d"', m={"k": "v"}) == ("d", [Reference("s", A)])
    assert run('m[s] | "d"', s="k") == ("d", [Reference("m", A)])  # the key is never read
    assert run('m[s] | "d"', m={"k": "v"}, s="k") == ("v", [Reference("s", E), Reference("m", E, "k")])
    assert run('m[s | s2] | "d"', m={}) == ("d", [Reference("s", A), Reference("s2", A)])
    with pytest.raises(EvaluationError, match="lookup failed: 's'"):
        run('m[toLower(s)] | "d"', m={})  # a call's arguments are read outside |


def test_map_first_then_key_outside_or() -> None:
    bag = AttributeBag({})
    with pytest.raises(EvaluationError, match="lookup failed: 'm'"):
        compile_expression("m[s]", M).evaluate(bag)
    assert bag.references() == [Reference("m", A)]


def test_a_functions_extra_arguments_are_evaluated_and_the_last_ones_used() -> None:
    """Mixer's stack machine: `match("abc", "a*", "abc")` is match("a*", "abc")."""
    assert run('match("abc", "a*", "abc")') == (False, [])
    assert run('s.startsWith("a", "x")', s="abc") == (False, [Reference("s", E)])
    assert run("toLower(s, s2)", s="A", s2="B") == ("b", [Reference("s", E), Reference("s2", E)])
    assert run("size(s, s2)", s="abc") == (3, [Reference("s", E)])  # size is Mixer's own: ignored


def test_conditional_string_evaluates_both_branches() -> None:
    """conditionalString is a plain function in Mixer, unlike conditional."""
    assert run("conditionalString(ok, s, s2)", ok=True, s="a", s2="b") == (
        "a",
        [Reference("ok", E), Reference("s", E), Reference("s2", E)],
    )
    with pytest.raises(EvaluationError, match="lookup failed: 's2'"):
        run("conditionalString(ok, s, s2)", ok=True, s="a")


def test_ip_is_the_16_byte_form_and_equals_4_bytes() -> None:
    mapped = b"\x00" * 10 + b"\xff\xff\x01\x02\x03\x04"
    assert run('ip("1.2.3.4")')[0] == mapped
    assert run('ip("010.1.2.3")')[0] == b"\x00" * 10 + b"\xff\xff\x0a\x01\x02\x03"  # Go 1.13 took 0-prefixes
    assert run('i == ip("1.2.3.4")', i=b"\x01\x02\x03\x04")[0] is True
    assert run('i | ip("0.0.0.0")')[0] == b"\x00" * 10 + b"\xff\xff\x00\x00\x00\x00"


def test_a_duration_attribute_may_hold_an_int() -> None:
    """Mixer read INT64 and DURATION attributes with the same instruction."""
    assert run("du", du=5)[0] == Duration(5)


@pytest.mark.parametrize(
    ("text", "values", "message"),
    [
        ("a == 1", {}, "lookup failed: 'a'"),
        ("s | s2", {}, "lookup failed: 's2'"),
        ('m["k"]', {}, "lookup failed: 'm'"),
        ("a == 1", {"a": "1"}, "error converting value to integer or duration: '1'"),
        ("ok", {"ok": 1}, "error converting value to bool: '1'"),
        ('s == "x"', {"s": b"\x01\x02"}, "error converting value to string: '[1 2]'"),
        ("d > 1.0", {"d": {"k": "v"}}, "error converting value to double: 'map[k:v]'"),
        ("ip(s) == i", {"s": "nope", "i": b"\x01\x02\x03\x04"}, "could not convert nope to IP_ADDRESS"),
        (
            "timestamp(s) == t",
            {"s": "2020-01-01", "t": Timestamp(0)},
            "could not convert '2020-01-01' to TIMESTAMP",
        ),
        (
            "dnsName(s) == dn",
            {"s": "a..b", "dn": "x"},
            """error converting 'a..b' to dns name: 'idna: invalid label "a..b"'""",
        ),
        (
            "email(s) == e",
            {"s": "Joe <joe@x.com>", "e": "x"},
            "error converting 'Joe <joe@x.com>' to e-mail: display names are not allowed",
        ),
        ("uri(s) == u", {"s": "", "u": "x"}, "error converting string to uri: empty string"),
        # == between values that do not parse is an error, not false.
        ("dn == dn", {"dn": "a_b.com"}, "idna: disallowed rune U+005F"),
        ("e == e", {"e": "joe"}, "mail: missing '@' or angle-addr"),
        ("e == e", {"e": "joe@a b.com"}, "mail: expected single address"),
        (
            "u == u",
            {"u": "http://a b/"},
            "error converting string to uri 'http://a b/': "
            """'parse http://a b/: invalid character " " in host name'""",
        ),
        ("s2.matches(s)", {"s": "x", "s2": "("}, "error parsing regexp"),
        ("s2.matches(s)", {"s": "aa", "s2": "(a)\\1"}, "error parsing regexp: invalid escape sequence"),
    ],
)
def test_runtime_errors(text: str, values: dict[str, Any], message: str) -> None:
    with pytest.raises(EvaluationError) as info:
        run(text, **values)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('"(a)\\\\1".matches(s)', "error parsing regexp: invalid escape sequence: `\\1`"),
        ('s == "x" && "[".matches(s)', "error parsing regexp: missing closing ]: `[`"),
        ('conditional(false, "(?<=a)".matches(s), true)', "invalid or unsupported Perl syntax"),
    ],
)
def test_a_bad_constant_pattern_is_a_compile_error(text: str, message: str) -> None:
    """Even where it would never be evaluated: a constant pattern is checked once, when compiling."""
    with pytest.raises(PatternError) as info:
        compile_expression(text, M)
    assert message in str(info.value)


def test_a_constant_pattern_is_compiled_once() -> None:
    compiled = compile_expression('"^(a+)+$".matches(s)', M)
    constants = compiled.evaluate.__globals__.values()  # the generated function's namespace
    assert externs.matches not in constants  # not the per-request path: the pattern compiled here
    assert run('"^(a+)+$".matches(s)', s="a" * 40 + "!")[0] is False


def test_subclass_values_pass_type_check() -> None:
    class Name(str):
        pass

    assert run('s == "x"', s=Name("x"))[0] is True


def test_constant_folding_gives_a_constant_evaluator() -> None:
    folded = compile_expression('size("ab") == 2 && ip("1.2.3.4") == ip("::ffff:1.2.3.4")', M)
    assert folded.constant and folded.value is True and folded.always_true
    assert folded.evaluate(AttributeBag()) is True
    partial = compile_expression('s == toLower("ABC")', M)
    assert not partial.constant
    assert "toLower" not in partial.source and "_k" in partial.source


@pytest.mark.parametrize("text", ["", "true", "TRUE", '"a" == "a"'])
def test_always_true(text: str) -> None:
    compiled = compile_expression(text, M)
    assert compiled.always_true and compiled.type == V.BOOL
    bag = AttributeBag({"a": 1})
    assert compiled.evaluate(bag) is True
    assert bag.references() == []


def test_not_always_true() -> None:
    assert not compile_expression("false", M).always_true
    assert not compile_expression("ok", M).always_true


def test_invalid_constant_ip_fails_at_run_time_not_compile_time() -> None:
    compiled = compile_expression('ip("x") == i', M)
    with pytest.raises(EvaluationError, match="could not convert x to IP_ADDRESS"):
        compiled.evaluate(AttributeBag({"i": b"\x01\x02\x03\x04"}))
