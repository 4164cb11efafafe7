"""CEXL parser: Go's expression grammar and precedence, then Mixer's rewrite into Constant/Variable/Function.

Two steps, as in Mixer: a Go-shaped syntax tree first (so what Go would reject we reject, with its
positions), then Mixer's `process` rewrite: operators become function names, selector chains become one
flat attribute name, literals become typed constants (a string that parses as a Go duration is a DURATION).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mixerd.attribute.godur import parse_go_duration
from mixerd.attribute.values import Duration, ValueType

from .ast import Constant, Expression, Function, Variable
from .errors import ParseError
from .lexer import Tok, Token, _msg, tokenize

# Go's binary operator precedence (go/token.Token.Precedence).
_BINARY_PREC = {
    "||": 1,
    "&&": 2,
    "==": 3,
    "!=": 3,
    "<": 3,
    "<=": 3,
    ">": 3,
    ">=": 3,
    "+": 4,
    "-": 4,
    "|": 4,
    "^": 4,
    "*": 5,
    "/": 5,
    "%": 5,
    "<<": 5,
    ">>": 5,
    "&": 5,
    "&^": 5,
}
_UNARY = frozenset({"!", "-", "+", "^"})
# Mixer's token -> function name map (pkg/lang/ast/expr.go tMap).
_FUNCTION_NAMES = {
    "==": "EQ",
    "!=": "NEQ",
    "<": "LT",
    "<=": "LEQ",
    ">": "GT",
    ">=": "GEQ",
    "&&": "LAND",
    "||": "LOR",
    "|": "OR",
    "+": "ADD",
    "-": "SUB",
    "*": "MUL",
    "/": "QUO",
    "%": "REM",
    "<<": "SHL",
    ">>": "SHR",
    "&": "AND",
    "&^": "AND_NOT",
    "^": "XOR",
    "!": "NOT",
}
_GO_KEYWORDS = frozenset(
    [
        "break",
        "case",
        "chan",
        "const",
        "continue",
        "default",
        "defer",
        "else",
        "fallthrough",
        "for",
        "func",
        "go",
        "goto",
        "if",
        "import",
        "interface",
        "map",
        "package",
        "range",
        "return",
        "select",
        "struct",
        "switch",
        "type",
        "var",
    ]
)
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


# -- the Go-shaped tree ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ident:
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class _Lit:
    tok: Token


@dataclass(frozen=True, slots=True)
class _Sel:
    x: object
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class _Call:
    fun: object
    args: tuple[object, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class _Index:
    x: object
    index: object
    pos: int


@dataclass(frozen=True, slots=True)
class _Paren:
    x: object


@dataclass(frozen=True, slots=True)
class _Op:
    op: str
    args: tuple[object, ...]
    pos: int


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def error(self, tok: Token, what: str) -> ParseError:
        return ParseError(_msg(self.text, tok.pos, what), tok.pos)

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, op: str) -> Token:
        tok = self.next()
        if tok.kind is not Tok.OP or tok.text != op:
            raise self.error(tok, f"expected '{op}', found {_describe(tok)}")
        return tok

    def parse(self) -> object:
        node = self.binary(1)
        tok = self.peek()
        if tok.kind is not Tok.EOF:
            raise self.error(tok, f"expected 'EOF', found {_describe(tok)}")
        return node

    def binary(self, min_prec: int) -> object:
        left = self.unary()
        while True:
            tok = self.peek()
            prec = _BINARY_PREC.get(tok.text, 0) if tok.kind is Tok.OP else 0
            if prec < min_prec:
                return left
            self.next()
            right = self.binary(prec + 1)  # left-associative
            left = _Op(tok.text, (left, right), tok.pos)

    def unary(self) -> object:
        tok = self.peek()
        if tok.kind is Tok.OP and tok.text in _UNARY:
            self.next()
            return _Op(tok.text, (self.unary(),), tok.pos)
        return self.primary()

    def primary(self) -> object:
        node = self.operand()
        while True:
            tok = self.peek()
            if tok.kind is not Tok.OP:
                return node
            if tok.text == ".":
                self.next()
                name = self.next()
                if name.kind is not Tok.IDENT:
                    raise self.error(name, f"expected selector or type assertion, found {_describe(name)}")
                if name.text in _GO_KEYWORDS:
                    raise self.error(name, f"expected 'IDENT', found '{name.text}'")
                node = _Sel(node, name.text, name.pos)
            elif tok.text == "[":
                self.next()
                if self.peek().text in ("]", ":") and self.peek().kind is Tok.OP:
                    raise self.error(self.peek(), f"expected operand, found {_describe(self.peek())}")
                index = self.binary(1)
                close = self.peek()
                if close.kind is Tok.OP and close.text == ":":
                    raise self.error(close, "slice expressions are not supported")
                self.expect("]")
                node = _Index(node, index, tok.pos)
            elif tok.text == "(":
                self.next()
                args: list[object] = []
                while not (self.peek().kind is Tok.OP and self.peek().text == ")"):
                    args.append(self.binary(1))
                    sep = self.peek()
                    if sep.kind is Tok.OP and sep.text == ",":
                        self.next()
                    elif not (sep.kind is Tok.OP and sep.text == ")"):
                        raise self.error(sep, f"expected ')', found {_describe(sep)}")
                self.expect(")")
                node = _Call(node, tuple(args), tok.pos)
            else:
                return node

    def operand(self) -> object:
        tok = self.next()
        if tok.kind is Tok.IDENT:
            if tok.text in _GO_KEYWORDS:
                raise self.error(tok, f"expected operand, found '{tok.text}'")
            return _Ident(tok.text, tok.pos)
        if tok.kind in (Tok.INT, Tok.FLOAT, Tok.IMAG, Tok.CHAR, Tok.STRING):
            return _Lit(tok)
        if tok.kind is Tok.OP and tok.text == "(":
            inner = self.binary(1)
            self.expect(")")
            return _Paren(inner)
        raise self.error(tok, f"expected operand, found {_describe(tok)}")


def _describe(tok: Token) -> str:
    if tok.kind is Tok.EOF:
        return "'EOF'"
    if tok.kind is Tok.OP:
        return f"'{tok.text}'"
    return f"{tok.kind.value.lower()} {tok.text}" if tok.kind is not Tok.IDENT else f"'IDENT' {tok.text}"


# -- Mixer's rewrite --------------------------------------------------------------------------------


class _Rewriter:
    def __init__(self, text: str) -> None:
        self.text = text

    def error(self, pos: int, what: str) -> ParseError:
        return ParseError(_msg(self.text, pos, what), pos)

    def rewrite(self, node: object) -> Expression:
        if isinstance(node, _Paren):
            return self.rewrite(node.x)
        if isinstance(node, _Lit):
            return self.literal(node.tok)
        if isinstance(node, _Ident):
            if node.name.lower() in ("true", "false"):  # Mixer lower-cases before comparing
                return Constant(node.name.lower() == "true", ValueType.BOOL, node.pos)
            return Variable(node.name, node.pos)
        if isinstance(node, _Sel):
            return Variable(self.selector(node), _start(node))
        if isinstance(node, _Index):
            return Function("INDEX", None, (self.rewrite(node.x), self.rewrite(node.index)), node.pos)
        if isinstance(node, _Op):
            args = tuple(self.rewrite(a) for a in node.args)
            return Function(_FUNCTION_NAMES[node.op], None, args, node.pos)
        if isinstance(node, _Call):
            args = tuple(self.rewrite(a) for a in node.args)
            if isinstance(node.fun, _Ident):
                return Function(node.fun.name, None, args, node.fun.pos)
            if isinstance(node.fun, _Sel):  # method call: the last selector is the method name
                return Function(node.fun.name, self.rewrite(node.fun.x), args, node.fun.pos)
            raise self.error(node.pos, "unexpected expression: only functions and methods can be called")
        raise self.error(0, f"unexpected expression {node!r}")  # pragma: no cover - all kinds handled

    def selector(self, node: _Sel) -> str:
        if isinstance(node.x, _Ident):
            return f"{node.x.name}.{node.name}"
        if isinstance(node.x, _Sel):
            return f"{self.selector(node.x)}.{node.name}"
        raise self.error(node.pos, "unexpected expression: a selector must follow an attribute name")

    def literal(self, tok: Token) -> Constant:
        if tok.kind is Tok.INT:
            # Mixer parses integers in base 10: hex, binary, 0o-octal and `_` separators fail.
            if not tok.text.isdigit() or not tok.text.isascii():
                raise self.error(tok.pos, f"invalid INT64 literal {tok.text}")
            value = int(tok.text, 10)
            if value > _INT64_MAX:
                raise self.error(tok.pos, f"INT64 literal {tok.text} out of range")
            return Constant(value, ValueType.INT64, tok.pos)
        if tok.kind is Tok.FLOAT:
            try:
                value = float(tok.text)
            except ValueError:
                raise self.error(tok.pos, f"invalid DOUBLE literal {tok.text}") from None
            if math.isinf(value):  # Go's strconv.ParseFloat refuses it (ErrRange) rather than round to Inf
                raise self.error(tok.pos, f"DOUBLE literal {tok.text} out of range")
            return Constant(value, ValueType.DOUBLE, tok.pos)
        if tok.kind in (Tok.STRING, Tok.CHAR):
            value = tok.value or ""
            try:  # the DURATION quirk: `"10ms"`, and `"0"`, are durations
                return Constant(Duration(parse_go_duration(value)), ValueType.DURATION, tok.pos)
            except ValueError:
                return Constant(value, ValueType.STRING, tok.pos)
        raise self.error(tok.pos, f"unsupported literal {tok.text}")


def _start(node: object) -> int:
    while isinstance(node, _Sel):
        node = node.x
    return node.pos if isinstance(node, _Ident) else 0


def parse(text: str) -> Expression:
    """The syntax tree of CEXL `text`; ParseError (with Go-style `line:col`) on bad syntax."""
    return _Rewriter(text).rewrite(_Parser(text).parse())
