"""Property tests: only ExpressionErrors out of parse/check; compiled == tree-walking evaluation."""

from __future__ import annotations

import contextlib
import functools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mixerd.attribute import AttributeBag, ValueType
from mixerd.lang import EvaluationError, ExpressionError, check, compile_expression, parse
from mixerd.lang.ast import Constant, Expression, Function, Variable

V = ValueType
M = {"a": V.INT64, "b": V.INT64, "s": V.STRING, "s2": V.STRING, "ok": V.BOOL, "m": V.STRING_MAP}
FAST = settings(max_examples=150, deadline=None)

TOKENS = st.sampled_from(
    ["a", "s", "m", "ok", "x.y", "(", ")", "[", "]", ",", ".", "|", "||", "&&", "==", "!=", "<", "+", "-",
     "!", "*", "&^", '"k"', '"1s"', "'c'", "`r`", "1", "2.5", "0x1", "true", "size", "match", "startsWith",
     "conditional", "=", "if", "@", '"', "1e", "emptyStringMap", "matches", '"(a+)+$"', '"("', '"\\\\1"']
)  # fmt: skip


@FAST
@given(st.lists(TOKENS, max_size=12))
def test_token_soup_only_raises_expression_errors(tokens: list[str]) -> None:
    text = " ".join(tokens)
    with contextlib.suppress(ExpressionError):
        compile_expression(text, M)


# -- well-typed random expressions, as text ----------------------------------------------------------


@functools.cache  # strategies are immutable; building the tree once per (type, depth) keeps this fast
def _exprs(vtype: ValueType, depth: int) -> st.SearchStrategy[str]:
    leaves = {
        V.INT64: st.one_of(st.sampled_from(["a", "b"]), st.integers(0, 1000).map(str)),
        V.STRING: st.one_of(
            st.sampled_from(["s", "s2", 'm["k"]', 'm["j"]']),
            st.sampled_from(["", "x", "ab", "a*", "*b", "héllo"]).map(lambda v: f'"{v}"'),
        ),
        V.BOOL: st.sampled_from(["ok", "true", "false"]),
    }[vtype]
    if depth == 0:
        return leaves
    sub = lambda t: _exprs(t, depth - 1)  # noqa: E731
    options: list[st.SearchStrategy[str]] = [leaves]
    options.append(st.tuples(sub(vtype), sub(vtype)).map(lambda p: f"({p[0]} | {p[1]})"))
    options.append(
        st.tuples(sub(V.BOOL), sub(vtype), sub(vtype)).map(lambda p: f"conditional({p[0]}, {p[1]}, {p[2]})")
    )
    if vtype in (V.INT64, V.STRING):
        options.append(st.tuples(sub(vtype), sub(vtype)).map(lambda p: f"({p[0]} + {p[1]})"))
    if vtype == V.INT64:
        options.append(sub(V.STRING).map(lambda s: f"size({s})"))
    if vtype == V.STRING:
        options.append(sub(V.STRING).map(lambda s: f"toLower({s})"))
    if vtype == V.BOOL:
        for op in ("==", "!=", "<", ">="):
            for t in (V.INT64, V.STRING):
                options.append(st.tuples(sub(t), sub(t)).map(lambda p, op=op: f"({p[0]} {op} {p[1]})"))
        options.append(st.tuples(sub(V.BOOL), sub(V.BOOL)).map(lambda p: f"({p[0]} && {p[1]})"))
        options.append(st.tuples(sub(V.BOOL), sub(V.BOOL)).map(lambda p: f"({p[0]} || {p[1]})"))
        options.append(st.tuples(sub(V.STRING), sub(V.STRING)).map(lambda p: f"match({p[0]}, {p[1]})"))
        options.append(st.tuples(sub(V.STRING), sub(V.STRING)).map(lambda p: f"({p[0]}).startsWith({p[1]})"))
    return st.one_of(*options)


BAGS = st.fixed_dictionaries(
    {},
    optional={
        "a": st.integers(-5, 5),
        "b": st.integers(-5, 5),
        "s": st.sampled_from(["", "x", "ab", "AB"]),
        "s2": st.sampled_from(["a*", "*b", "x"]),
        "ok": st.booleans(),
        "m": st.dictionaries(st.sampled_from(["k", "j"]), st.sampled_from(["", "v"])),
    },
)

_ABSENT: Any = object()


class Lookup(Exception):
    pass


def reference_eval(node: Expression, bag: AttributeBag) -> Any:
    """A plain tree walker with Mixer's semantics, independent of the compiler's code generation."""
    if isinstance(node, Constant):
        return node.value
    if isinstance(node, Variable):
        value = bag.get(node.name)
        if value is None:
            raise Lookup(node.name)
        return value
    assert isinstance(node, Function)
    n, args = node.name, node.args
    if n == "OR":
        left = _optional(args[0], bag)
        return reference_eval(args[1], bag) if left is _ABSENT else left
    if n == "INDEX":
        value = bag.map_get(args[0].name, reference_eval(args[1], bag))  # type: ignore[attr-defined]
        if value is None:
            if bag.peek(args[0].name) is None:  # type: ignore[attr-defined]
                raise Lookup(args[0].name)  # type: ignore[attr-defined]
            return ""
        return value
    if n == "LAND":
        return reference_eval(args[0], bag) and reference_eval(args[1], bag)
    if n == "LOR":
        return reference_eval(args[0], bag) or reference_eval(args[1], bag)
    if n == "conditional":
        return reference_eval(args[1] if reference_eval(args[0], bag) else args[2], bag)
    if node.target is not None:
        return reference_eval(node.target, bag).startswith(reference_eval(args[0], bag))
    vals = [reference_eval(a, bag) for a in args]
    if n == "ADD":
        total = vals[0] + vals[1]
        return (total + 2**63) % 2**64 - 2**63 if isinstance(total, int) else total
    ops = {
        "EQ": lambda x, y: x == y,
        "NEQ": lambda x, y: x != y,
        "LT": lambda x, y: x < y,
        "GEQ": lambda x, y: x >= y,
        "size": lambda x: len(x.encode()),
        "toLower": lambda x: x.lower(),
        "match": lambda x, p: x.startswith(p[:-1]) if p.endswith("*") else (
            x.endswith(p[1:]) if p.startswith("*") else x == p
        ),
    }  # fmt: skip
    return ops[n](*vals)


def _optional(node: Expression, bag: AttributeBag) -> Any:
    if isinstance(node, Variable):
        value = bag.get(node.name)
        return _ABSENT if value is None else value
    if isinstance(node, Function) and node.name == "INDEX":
        value = bag.map_get(node.args[0].name, reference_eval(node.args[1], bag))  # type: ignore[attr-defined]
        return _ABSENT if value is None else value
    if isinstance(node, Function) and node.name == "OR":
        left = _optional(node.args[0], bag)
        return _optional(node.args[1], bag) if left is _ABSENT else left
    return reference_eval(node, bag)


@FAST
@given(
    st.sampled_from([V.INT64, V.STRING, V.BOOL]).flatmap(lambda t: st.tuples(st.just(t), _exprs(t, 3))), BAGS
)
def test_compiled_agrees_with_reference(typed: tuple[ValueType, str], values: dict[str, Any]) -> None:
    vtype, text = typed
    assert check(text, M) == vtype
    compiled = compile_expression(text, M)
    ref_bag, bag = AttributeBag(values), AttributeBag(values)
    try:
        expected: Any = reference_eval(parse(text), ref_bag)
    except Lookup as missing:
        expected = EvaluationError(f"lookup failed: '{missing}'")
    try:
        got: Any = compiled.evaluate(bag)
    except EvaluationError as err:
        got = err
    if isinstance(expected, Exception):
        assert isinstance(got, EvaluationError) and str(got) == str(expected), text
    else:
        assert got == expected and type(got) is type(expected), text
    assert bag.references() == ref_bag.references(), text
