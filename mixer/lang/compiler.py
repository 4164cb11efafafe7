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
from mixerd.attribute.values import Duration, ValueType
from mixerd.regex import RegexError, compile_regex

from . import externs
from .ast import Constant, Expression, Function, Variable
from .checker import check
from .errors import EvaluationError, ExpressionError, PatternError, TypeCheckError
from .externs import go_text
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
    unsupported(tree, manifest)
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


# -- operators Mixer's code generator has no instruction for ----------------------------------------

# Mixer's IL type of each value type: its generator picks instructions by these, and names them in errors.
_IL_TYPE = {
    _V.STRING: "string",
    _V.DNS_NAME: "string",
    _V.EMAIL_ADDRESS: "string",
    _V.URI: "string",
    _V.BOOL: "bool",
    _V.INT64: "integer",
    _V.DURATION: "duration",
    _V.DOUBLE: "double",
    _V.IP_ADDRESS: "interface",
    _V.TIMESTAMP: "interface",
    _V.STRING_MAP: "interface",
}
# Per operator: what Mixer calls it in "not yet implemented", and the types it has instructions for.
# DURATION is mixerd's own addition for the comparisons: Mixer 1.4 had no instruction for it, so
# `response.duration > "1s"` did not compile there (docs/config.md, "Differences from Mixer").
_EQUALITY = frozenset(_IL_TYPE) - {_V.STRING_MAP}
_ORDER = frozenset(
    {_V.STRING, _V.DNS_NAME, _V.EMAIL_ADDRESS, _V.URI, _V.INT64, _V.DOUBLE, _V.TIMESTAMP, _V.DURATION}
)
_GENERATED: dict[str, tuple[str, frozenset[ValueType]]] = {
    "EQ": ("equality", _EQUALITY),
    "NEQ": ("equality", _EQUALITY),
    "LT": ("less than", _ORDER),
    "LEQ": ("less or equal", _ORDER),
    "GT": ("greater than", _ORDER),
    "GEQ": ("greater or equal", _ORDER),
    "ADD": ("Add", frozenset({_V.STRING, _V.DNS_NAME, _V.EMAIL_ADDRESS, _V.URI, _V.INT64, _V.DOUBLE})),
}


# Mixer's own instructions and how many arguments each generates: the rest are ignored, unevaluated.
_INTRINSIC_ARITY = {
    "EQ": 2, "NEQ": 2, "LT": 2, "LEQ": 2, "GT": 2, "GEQ": 2, "LAND": 2, "LOR": 2, "OR": 2, "INDEX": 2,
    "ADD": 2, "conditional": 3, "size": 1,
}  # fmt: skip


def unsupported(tree: Expression, manifest: Mapping[str, ValueType]) -> None:
    """TypeCheckError, with Mixer's text, for the first operator (children first, left to right, the
    order Mixer generates code in) whose operand type Mixer could not generate code for.

    A function's extra arguments are evaluated (see _Generator.call) though the checker never looked at
    them; each must be a valid expression of its own (Mixer crashed on one that was not).
    """
    if not isinstance(tree, Function):
        return
    arity = _INTRINSIC_ARITY.get(tree.name)
    if arity is not None:
        children: tuple[Expression, ...] = tree.args[:arity]
    else:
        children = tree.args if tree.target is None else (tree.target, *tree.args)
        for extra in tree.args[len(FUNCTIONS[tree.name].arg_types) :]:
            check(extra, manifest)
    for child in children:
        unsupported(child, manifest)
    rule = _GENERATED.get(tree.name)
    if rule is not None:
        what, allowed = rule
        vtype = check(tree.args[0], manifest)
        if vtype not in allowed:
            raise TypeCheckError(
                f"internal compiler error -- {what} for type not yet implemented: {_IL_TYPE[vtype]}", tree.pos
            )


# -- runtime helpers the generated code calls on its slow paths -------------------------------------

# What Mixer's attribute reads call each type when a value has the wrong Go type; IPs, timestamps and
# maps were not checked there (a later step failed on them), so those names are mixerd's.
_CONVERSION_NAME = {
    _V.STRING: "string",
    _V.DNS_NAME: "string",
    _V.EMAIL_ADDRESS: "string",
    _V.URI: "string",
    _V.BOOL: "bool",
    _V.INT64: "integer or duration",
    _V.DURATION: "integer or duration",
    _V.DOUBLE: "double",
    _V.IP_ADDRESS: "IP address",
    _V.TIMESTAMP: "timestamp",
    _V.STRING_MAP: "string map",
}


def _attr(value: Any, name: str, vtype: ValueType, cls: type) -> Any:
    """An attribute read that missed the exact-class fast path: absent, a subclass, or the wrong type."""
    if value is None:
        raise EvaluationError(f"lookup failed: '{name}'")
    if isinstance(value, bool):
        if cls is bool:
            return value
    elif isinstance(value, cls):
        return value
    elif vtype is _V.DURATION and isinstance(value, int):
        return Duration(value)  # Mixer read INT64 and DURATION attributes alike
    raise EvaluationError(f"error converting value to {_CONVERSION_NAME[vtype]}: '{go_text(value)}'")


def _map_name(value: Any, name: str) -> str:
    """`name`, once its value (not a dict) is found to be a map anyway, or the read error Mixer gives."""
    _attr(value, name, _V.STRING_MAP, dict)
    return name


def _lookup(bag: AttributeBag, ref: str | Mapping[str, str], key: str) -> str | None:
    """The value under `key` in a map: `ref` names a map attribute of the bag (the read is recorded as
    (name, key)), or is a map some function made (nothing to record)."""
    if ref.__class__ is str:
        return bag.map_get(ref, key)  # type: ignore[arg-type]
    return ref.get(key)  # type: ignore[union-attr]


def _index_miss(bag: AttributeBag, name: str) -> str:
    """`m[k]` outside `|` found nothing: a missing key is "", a missing map is a lookup failure."""
    if bag.peek(name) is None:
        raise EvaluationError(f"lookup failed: '{name}'")
    return ""


def _failed(err: Exception) -> EvaluationError:
    # Python-level failures come from values of the wrong type (e.g. a string where a map belongs).
    return EvaluationError(f"error converting value to the expected type: {type(err).__name__}: {err}")


_NOT_FOLDED: Any = object()
#: What an operand that is absent evaluates to inside `|` (the generated code compares with `is`).
_ABSENT: Any = object()


class _Generator:
    """Turns a checked tree into one Python expression (text over generated names only).

    `expr` is Mixer's plain mode: an absent attribute is an error. `optional` is Mixer's mode inside
    `|`: an absent attribute, a missing map, a map key that is itself absent or a missing key makes the
    whole operand absent, and the code given as `fallback` runs instead. Only attribute reads, `|` and
    map lookups can be absent; constants and calls are always present (a call's arguments are read in
    plain mode), exactly where Mixer's generator jumps on a value.
    """

    def __init__(self, manifest: Mapping[str, ValueType]) -> None:
        self.manifest = manifest
        self.namespace: dict[str, Any] = {
            "_ExpressionError": ExpressionError,
            "_failed": _failed,
            "_attr": _attr,
            "_map_name": _map_name,
            "_lookup": _lookup,
            "_index_miss": _index_miss,
            "_ABSENT": _ABSENT,
            "_type": type,
            "_dict": dict,
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

    # -- plain mode ----------------------------------------------------------------------------

    def expr(self, node: Expression) -> str:
        if isinstance(node, Constant):
            return self.literal(node.value)
        if isinstance(node, Variable):
            return self.read(node, None)
        assert isinstance(node, Function)
        return self.maybe_fold(self.function(node))

    def read(self, node: Variable, fallback: str | None) -> str:
        """An attribute read; absent is an error, or `fallback` when given."""
        vtype = self.manifest[node.name]
        t, name = self.temp(), self.const(node.name)
        cls, vt = self.const(PYTHON_CLASS[vtype]), self.const(vtype)
        read = "bag.get_map" if vtype is ValueType.STRING_MAP else "bag.get"
        slow = f"_attr({t}, {name}, {vt}, {cls})"
        if fallback is not None:
            slow = f"({fallback} if {t} is None else {slow})"
        return f"({t} if _type({t} := {read}({name})) is {cls} else {slow})"

    def function(self, node: Function) -> str:
        name = node.name
        info = FUNCTIONS[name]
        args = node.args
        if name == "LAND":
            return f"({self.expr(args[0])} and {self.expr(args[1])})"
        if name == "LOR":
            return f"({self.expr(args[0])} or {self.expr(args[1])})"
        if name == "conditional":
            cond, yes, no = (self.expr(a) for a in args[:3])
            return f"({yes} if {cond} else {no})"
        if name == "OR":
            return self.first_present(_flatten_or(node))
        if name == "INDEX":
            return self.index(args[0], args[1], None)
        if name in _COMPARE:
            return self.compare(name, args[0], args[1])
        if name == "ADD":
            left, right = self.expr(args[0]), self.expr(args[1])
            if self.type_of(args[0]) == _V.INT64:
                return f"{self.const(externs.wrap64)}({left} + {right})"
            return f"({left} + {right})"
        if name == "size":  # Mixer's own instruction: extra arguments are not even evaluated
            return f"{self.const(externs.size)}({self.expr(args[0])})"
        return self.call(node, info)

    def call(self, node: Function, info: Any) -> str:
        """A function of the table (Mixer's externs). Mixer evaluates every argument written, extra ones
        too, and the function takes the last ones it needs from its stack: `match("abc", "a*", "abc")` is
        match("a*", "abc"). Extra arguments are rare slips; this keeps their reads and results Mixer's."""
        args = (node.target, *node.args) if node.target is not None else node.args
        wanted = len(info.arg_types) + (1 if info.instance else 0)
        if len(args) == wanted:
            special = self.special_call(node, args)
            if special is not None:
                return special
        assert info.impl is not None
        codes = [self.expr(a) for a in args]
        impl = self.const(info.impl)
        if len(codes) == wanted:
            return f"{impl}({', '.join(codes)})"
        extra, used = codes[: len(codes) - wanted], codes[len(codes) - wanted :]
        return f"({', '.join(extra)}, {impl}({', '.join(used)}))[-1]"

    def special_call(self, node: Function, args: tuple[Expression, ...]) -> str | None:
        """Calls done inline, or decided at compile time; None for the plain call."""
        name = node.name
        if name == "match" and isinstance(args[1], Constant):
            return self.glob(self.expr(args[0]), args[1].value)
        if name == "startsWith":
            return f"{self.expr(args[0])}.startswith({self.expr(args[1])})"
        if name == "endsWith":
            return f"{self.expr(args[0])}.endswith({self.expr(args[1])})"
        if name == "matches" and isinstance(args[0], Constant):
            # The target is the pattern; a constant one is compiled once, here, and an invalid one is a
            # compile error (Mixer failed every evaluation of it instead).
            try:
                regex = compile_regex(args[0].value)
            except RegexError as err:
                raise PatternError(str(err)) from None
            return f"{self.const(regex.search)}({self.expr(args[1])})"
        return None

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

    # -- maps ----------------------------------------------------------------------------------

    def index(self, mapping: Expression, key: Expression, fallback: str | None) -> str:
        """`m[k]`: the map first, then the key, then the lookup, as Mixer does. In plain mode a missing
        key is ""; with a `fallback` (inside `|`) an absent map, an absent key or a missing key is it."""
        t = self.temp()
        if isinstance(mapping, Variable) and isinstance(key, Constant):
            # The common `request.headers["x"]`: one bag call records (map, key), or the map's absence.
            lookup = f"bag.map_get({self.const(mapping.name)}, {self.literal(key.value)})"
            missing = fallback if fallback is not None else f"_index_miss(bag, {self.const(mapping.name)})"
            return f"({t} if ({t} := {lookup}) is not None else {missing})"
        if fallback is None:
            ref = self.map_ref(mapping, None)
            value = f"_lookup(bag, {ref}, {self.expr(key)})"
            return f"({t} if ({t} := {value}) is not None else '')"
        m, k = self.temp(), self.temp()
        ref = self.map_ref(mapping, "_ABSENT")
        key_code = self.optional(key, "_ABSENT")
        return (
            f"({t} if ({m} := {ref}) is not _ABSENT and ({k} := {key_code}) is not _ABSENT"
            f" and ({t} := _lookup(bag, {m}, {k})) is not None else {fallback})"
        )

    def map_ref(self, node: Expression, fallback: str | None) -> str:
        """Code for the map `node` as `_lookup` takes it: the attribute's name when the map comes from the
        bag (so the key read is recorded against it, as Mixer's string maps record theirs), the map
        itself when a function made it; `fallback` for an absent one (inside `|`), else an error."""
        if isinstance(node, Variable):
            t, name = self.temp(), self.const(node.name)
            slow = f"_map_name({t}, {name})"
            if fallback is not None:
                slow = f"({fallback} if {t} is None else {slow})"
            return f"({name} if _type({t} := bag.get_map({name})) is _dict else {slow})"
        if isinstance(node, Function) and node.name == "OR":
            *options, last = _flatten_or(node)
            code = self.map_ref(last, fallback)
            for option in reversed(options):
                t = self.temp()
                code = f"({t} if ({t} := {self.map_ref(option, '_ABSENT')}) is not _ABSENT else {code})"
            return code
        if isinstance(node, Function) and node.name == "conditional":
            cond, yes, no = node.args[:3]
            return f"({self.map_ref(yes, None)} if {self.expr(cond)} else {self.map_ref(no, None)})"
        return self.expr(node)  # a map some function made: nothing to record

    # -- `|` -----------------------------------------------------------------------------------

    def first_present(self, operands: list[Expression]) -> str:
        """`a | b | c`: the first operand that is present; the last one is evaluated as usual."""
        *options, last = operands
        code = self.expr(last)
        for node in reversed(options):
            code = self.optional(node, code)
        return code

    def optional(self, node: Expression, fallback: str) -> str:
        """`node` if present, else `fallback` (Mixer's jump-on-value mode)."""
        if isinstance(node, Variable):
            return self.read(node, fallback)
        if isinstance(node, Function) and node.name == "OR":
            code = fallback
            for option in reversed(_flatten_or(node)):
                code = self.optional(option, code)
            return code
        if isinstance(node, Function) and node.name == "INDEX":
            return self.index(node.args[0], node.args[1], fallback)
        return self.expr(node)  # constants and calls are always present: the rest is never evaluated


def _flatten_or(node: Expression) -> list[Expression]:
    if isinstance(node, Function) and node.name == "OR" and node.target is None and len(node.args) >= 2:
        return [*_flatten_or(node.args[0]), *_flatten_or(node.args[1])]
    return [node]
