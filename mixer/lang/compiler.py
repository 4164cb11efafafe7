"""CEXL compiler: one generated Python function per expression, built once at config load.

Each expression becomes the source of `def evaluate(bag): return <one Python expression>`, compiled with
`compile()`. Every constant (attribute names, literals, precompiled regexes, helpers) is passed in the
function's globals under a generated name, so no user text is ever pasted into code. Evaluation order and
short-circuits follow Mixer, because the bag records every read (ReferencedAttributes, MIXER.md 8.5):
`and`/`or`/conditional expressions evaluate only what Mixer evaluates, and `|` reads its operands in order
and stops at the first present one. Constant sub-expressions are evaluated once here (folding).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mixerd.attribute.bag import AttributeBag
from mixerd.attribute.values import ValueType
from mixerd.regex import RegexError, compile_regex

from . import externs
from .ast import Constant, Expression, Function, Variable
from .checker import check
from .errors import EvaluationError, ExpressionError, PatternError
from .functions import EQUALITY, FUNCTIONS
from .parser import parse
from .types import PYTHON_CLASS

_V = ValueType
_COMPARE = {"EQ": "==", "NEQ": "!=", "LT": "<", "LEQ": "<=", "GT": ">", "GEQ": ">="}


class CompiledExpression:
    """A checked, compiled expression. `evaluate(bag)` is the generated function itself (no wrapper).

    `constant` is True when the whole expression folded to one value (then `value` holds it), and
    `always_true` when that value is BOOL true (an empty or `"true"` rule match).
    """

    __slots__ = ("always_true", "constant", "evaluate", "source", "text", "type", "value")

    def __init__(
        self,
        text: str,
        vtype: ValueType,
        evaluate: Callable[[AttributeBag], Any],
        *,
        constant: bool = False,
        value: Any = None,
        source: str = "",
    ) -> None:
        self.text = text
        self.type = vtype
        self.evaluate = evaluate
        self.constant = constant
        self.value = value
        self.always_true = constant and vtype == _V.BOOL and value is True
        self.source = source  # the generated Python, for debugging

    def __repr__(self) -> str:
        return f"CompiledExpression({self.text!r}, {self.type.name})"


def _constant_evaluator(value: Any) -> Callable[[AttributeBag], Any]:
    def evaluate(bag: AttributeBag) -> Any:
        return value

    return evaluate


_ALWAYS_TRUE = _constant_evaluator(True)


def compile_expression(text: str, manifest: Mapping[str, ValueType]) -> CompiledExpression:
    """Parse, type-check and compile `text`; "" means always true (an empty rule match)."""
    if text == "":
        return CompiledExpression(text, _V.BOOL, _ALWAYS_TRUE, constant=True, value=True)
    tree = parse(text)
    vtype = check(tree, manifest)
    gen = _Generator(manifest)
    code = gen.expr(tree)
    if not gen.reads_bag(code):
        folded = gen.fold(code)
        if folded is not _NOT_FOLDED:
            return CompiledExpression(text, vtype, _constant_evaluator(folded), constant=True, value=folded)
    source = (
        "def evaluate(bag):\n"
        "    try:\n"
        f"        return {code}\n"
        "    except _ExpressionError:\n"
        "        raise\n"
        "    except Exception as err:\n"
        "        raise _failed(err) from err\n"
    )
    namespace = gen.namespace
    exec(compile(source, f"<cexl {text[:60]!r}>", "exec"), namespace)  # our own generated code only
    # Taken out of its own globals, the function is no reference cycle: a replaced config's thousands
    # of expressions are freed as soon as the config is, without waiting for a full garbage collection.
    evaluate = namespace.pop("evaluate")
    return CompiledExpression(text, vtype, evaluate, source=source)


# -- runtime helpers the generated code calls on its slow paths -------------------------------------


def _attr(value: Any, name: str, vtype: ValueType, cls: type) -> Any:
    """An attribute read that missed the exact-class fast path: absent, a subclass, or the wrong type."""
    if value is None:
        raise EvaluationError(f"lookup failed: '{name}'")
    if isinstance(value, cls) and not (cls is int and isinstance(value, bool)):
        return value
    raise EvaluationError(
        f"error converting value to {vtype.name}: attribute '{name}' holds {type(value).__name__} {value!r}"
    )


def _flatten_or(node: Function) -> list[Expression]:
    out: list[Expression] = []
    for arg in node.args:
        if isinstance(arg, Function) and arg.name == "OR":
            out.extend(_flatten_or(arg))
        else:
            out.append(arg)
    return out


def _index_first_map(bag: AttributeBag, names: tuple[str, ...], key: str, fallback: Any) -> str:
    """`(m1 | m2 | ... | last)[key]`: index the first present map, recording (map, key)."""
    for name in names:
        if bag.get_map(name) is not None:
            value = bag.map_get(name, key)
            return "" if value is None else value
    return fallback()


def _index_miss(bag: AttributeBag, name: str) -> str:
    """`m[k]` outside `|` found nothing: a missing key is "", a missing map is a lookup failure."""
    if bag.peek(name) is None:
        raise EvaluationError(f"lookup failed: '{name}'")
    return ""


def _failed(err: Exception) -> EvaluationError:
    # Python-level failures come from values of the wrong type (e.g. a string where a map belongs).
    return EvaluationError(f"error converting value to the expected type: {type(err).__name__}: {err}")


_NOT_FOLDED: Any = object()


class _Generator:
    """Turns a checked tree into one Python expression (text over generated names only)."""

    def __init__(self, manifest: Mapping[str, ValueType]) -> None:
        self.manifest = manifest
        self.namespace: dict[str, Any] = {
            "_ExpressionError": ExpressionError,
            "_failed": _failed,
            "_attr": _attr,
            "_index_miss": _index_miss,
            "_index_first_map": _index_first_map,
            "_type": type,
        }
        self._names: dict[tuple[type, Any], str] = {}
        self._temps = 0

    # -- names ---------------------------------------------------------------------------------

    def const(self, value: Any) -> str:
        """A global name bound to `value` (deduplicated by type and value)."""
        try:
            key: tuple[type, Any] = (type(value), value)
            hash(key)
        except TypeError:
            key = (type(value), id(value))
        name = self._names.get(key)
        if name is None:
            name = f"_k{len(self._names)}"
            self._names[key] = name
            self.namespace[name] = value
        return name

    def temp(self) -> str:
        self._temps += 1
        return f"_t{self._temps}"

    @staticmethod
    def reads_bag(code: str) -> bool:
        return "bag" in code

    def fold(self, code: str) -> Any:
        """The value of bag-free `code`, or _NOT_FOLDED when it fails (the error then happens at run time)."""
        try:
            return eval(code, dict(self.namespace))  # our own generated code only
        except Exception:  # any failure is left for evaluation to report
            return _NOT_FOLDED

    def maybe_fold(self, code: str) -> str:
        if self.reads_bag(code) or code.startswith("_k"):
            return code
        value = self.fold(code)
        return code if value is _NOT_FOLDED else self.literal(value)

    def literal(self, value: Any) -> str:
        if value is True or value is False:
            return repr(value)
        return self.const(value)

    def type_of(self, node: Expression) -> ValueType:
        return check(node, self.manifest)

    # -- nodes ---------------------------------------------------------------------------------

    def expr(self, node: Expression) -> str:
        if isinstance(node, Constant):
            return self.literal(node.value)
        if isinstance(node, Variable):
            vtype = self.manifest[node.name]
            t, name = self.temp(), self.const(node.name)
            cls, vt = self.const(PYTHON_CLASS[vtype]), self.const(vtype)
            read = "bag.get_map" if vtype is ValueType.STRING_MAP else "bag.get"
            return f"({t} if _type({t} := {read}({name})) is {cls} else _attr({t}, {name}, {vt}, {cls}))"
        assert isinstance(node, Function)
        return self.maybe_fold(self.function(node))

    def function(self, node: Function) -> str:
        name = node.name
        info = FUNCTIONS[name]
        arity = len(info.arg_types)
        args = node.args[:arity]  # extra arguments are not checked by Mixer, and never evaluated
        if name == "LAND":
            return f"({self.expr(args[0])} and {self.expr(args[1])})"
        if name == "LOR":
            return f"({self.expr(args[0])} or {self.expr(args[1])})"
        if name in ("conditional", "conditionalString"):
            cond, yes, no = (self.expr(a) for a in args)
            return f"({yes} if {cond} else {no})"
        if name == "OR":
            return self.first_present(_flatten_or(node))
        if name == "INDEX":
            return self.index(args[0], args[1])
        if name in _COMPARE:
            return self.compare(name, args[0], args[1])
        if name == "ADD":
            left, right = self.expr(args[0]), self.expr(args[1])
            if self.type_of(args[0]) == _V.INT64:
                return f"{self.const(externs.wrap64)}({left} + {right})"
            return f"({left} + {right})"
        if name == "match" and isinstance(args[1], Constant):
            return self.glob(self.expr(args[0]), args[1].value)
        if info.instance:
            assert node.target is not None
            return self.method(name, node.target, args[0])
        assert info.impl is not None
        return f"{self.const(info.impl)}({', '.join(self.expr(a) for a in args)})"

    def compare(self, name: str, left_node: Expression, right_node: Expression) -> str:
        left, right = self.expr(left_node), self.expr(right_node)
        vtype = self.type_of(left_node)
        equal = EQUALITY.get(vtype)
        if equal is not None and name in ("EQ", "NEQ"):
            call = f"{self.const(equal)}({left}, {right})"
            return call if name == "EQ" else f"(not {call})"
        return f"({left} {_COMPARE[name]} {right})"

    def glob(self, text: str, pattern: str) -> str:
        """`match(s, "p")` with a constant pattern, decided here rather than per request."""
        if pattern == "*":
            return f"({text} is not None)"  # still evaluates `s` (its read is recorded, its absence fails)
        if pattern.endswith("*"):
            return f"{text}.startswith({self.const(pattern[:-1])})"
        if pattern.startswith("*"):
            return f"{text}.endswith({self.const(pattern[1:])})"
        return f"({text} == {self.const(pattern)})"

    def method(self, name: str, target: Expression, arg: Expression) -> str:
        subject, operand = self.expr(target), self.expr(arg)
        if name == "startsWith":
            return f"{subject}.startswith({operand})"
        if name == "endsWith":
            return f"{subject}.endswith({operand})"
        # matches: the target is the pattern; a constant one is compiled once, here, and an invalid one
        # is a compile error (Mixer failed every evaluation of it instead).
        if isinstance(target, Constant):
            try:
                regex = compile_regex(target.value)
            except RegexError as err:
                raise PatternError(str(err)) from None
            return f"{self.const(regex.search)}({operand})"
        return f"{self.const(externs.matches)}({subject}, {operand})"

    def index(self, mapping: Expression, key: Expression) -> str:
        key_code = self.expr(key)
        t = self.temp()
        if isinstance(mapping, Variable):
            name = self.const(mapping.name)
            return (
                f"({t} if ({t} := bag.map_get({name}, {key_code})) is not None else _index_miss(bag, {name}))"
            )
        if isinstance(mapping, Function) and mapping.name == "OR":
            # `(a | b)["k"]`: the key is recorded against whichever map was chosen (MIXER.md 8.5).
            options = _flatten_or(mapping)
            *named, last = options
            if named and all(isinstance(o, Variable) for o in named):
                names = self.const(tuple(o.name for o in named))  # type: ignore[union-attr]
                fallback = f"lambda: {self.index(last, key)}"
                return f"_index_first_map(bag, {names}, {key_code}, {fallback})"
        return f"{self.expr(mapping)}.get({key_code}, '')"

    def first_present(self, operands: list[Expression]) -> str:
        """`a | b | c`: the first operand that is present; the last one is evaluated as usual."""
        *options, last = operands
        code = self.expr(last)
        for node in reversed(options):
            code = self.optional(node, code)
        return code

    def optional(self, node: Expression, fallback: str) -> str:
        """`node` if present, else `fallback`; only attribute reads and map lookups can be absent."""
        t = self.temp()
        if isinstance(node, Variable):
            vtype = self.manifest[node.name]
            name = self.const(node.name)
            cls, vt = self.const(PYTHON_CLASS[vtype]), self.const(vtype)
            read = "bag.get_map" if vtype is ValueType.STRING_MAP else "bag.get"
            return (
                f"({t} if _type({t} := {read}({name})) is {cls} else "
                f"({fallback} if {t} is None else _attr({t}, {name}, {vt}, {cls})))"
            )
        if isinstance(node, Function) and node.name == "INDEX":
            mapping, key = node.args[0], node.args[1]
            key_code = self.expr(key)
            if isinstance(mapping, Variable):
                lookup = f"bag.map_get({self.const(mapping.name)}, {key_code})"
            else:
                lookup = f"{self.expr(mapping)}.get({key_code})"
            return f"({t} if ({t} := {lookup}) is not None else {fallback})"
        return self.expr(node)  # constants and calls are always present: the rest is never evaluated


def _flatten_or(node: Expression) -> list[Expression]:
    if isinstance(node, Function) and node.name == "OR" and node.target is None and len(node.args) >= 2:
        return [*_flatten_or(node.args[0]), *_flatten_or(node.args[1])]
    return [node]
