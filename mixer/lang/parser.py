"""CEXL parser: Go's expression grammar, precedence and error texts, then Mixer's rewrite into
Constant/Variable/Function.

Two steps, as in Mixer: Go's `parser.ParseExpr` first, then Mixer's `process` rewrite (operators become
function names, selector chains one flat attribute name, literals typed constants: a string that parses
as a Go duration is a DURATION).

Like Go's parser this one does not stop at the first problem: it reports it, recovers the way Go does and
goes on, so the error Mixer showed is the one shown here: errors sorted by position, a second error on
the line of the previous one dropped, scanner errors always kept, `(and N more errors)` when several
remain. What Go's parser accepts but Mixer's rewrite does not (a slice, `*x`, a method on an index) is
Mixer's "unexpected expression" (Mixer printed Go's AST with memory addresses; here the node's kind).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mixerd.attribute.godur import parse_go_duration
from mixerd.attribute.values import Duration, ValueType

from .ast import Constant, Expression, Function, Variable
from .errors import ParseError
from .gonet import go_quote
from .lexer import LITERALS, Tok, Token, line_col, tokenize

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
_UNARY = frozenset({"+", "-", "!", "^", "&", "<-"})
# Mixer's token -> function name map (pkg/lang/ast tMap). Operators it does not list (<<, >>, &^, <-)
# get the empty name, hence "unknown function: ".
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
    "&": "AND",
    "^": "XOR",
    "!": "NOT",
}
# Go's parser resynchronises on these after a missing operand.
_STATEMENT_START = frozenset(
    {"break", "const", "continue", "defer", "fallthrough", "for", "go", "goto", "if", "return", "select"}
    | {"switch", "type", "var"}
)
_INT64_MAX = (1 << 63) - 1


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


@dataclass(frozen=True, slots=True)
class _Other:
    """A Go expression Mixer's rewrite refuses (`*x`, a slice, a composite literal, ...), or a bad one."""

    kind: str  # Go's AST type, e.g. "SliceExpr"
    pos: int


class _Bailout(Exception):
    """More than 10 errors: Go's parser gives up."""


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.errors: list[tuple[int, str]] = list(self.tokens[0].errors)
        self.sync_pos = -1
        self.sync_count = 0

    # -- tokens and errors, as Go's parser keeps them ----------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def is_op(self, op: str) -> bool:
        return self.tok.kind is Tok.OP and self.tok.text == op

    def next(self) -> None:
        if self.tok.kind is not Tok.EOF:
            self.i += 1
            self.errors.extend(self.tok.errors)  # Go's scanner reports as it reads the token

    def line(self, pos: int) -> int:
        return line_col(self.text, pos)[0]

    def error(self, pos: int, message: str) -> None:
        # Go keeps one parser error per line (the first), and gives up after 10.
        if self.errors and self.line(self.errors[-1][0]) == self.line(pos):
            return
        if len(self.errors) > 10:
            raise _Bailout
        self.errors.append((pos, message))

    def error_expected(self, pos: int, what: str) -> None:
        message = f"expected {what}"
        if pos == self.tok.pos:
            message += f", found {_describe(self.tok)}"
        self.error(pos, message)

    def expect(self, op: str) -> int:
        pos = self.tok.pos
        if not self.is_op(op):
            self.error_expected(pos, f"'{op}'")
        self.next()
        return pos

    def expect_closing(self, op: str, context: str) -> int:
        if not self.is_op(op) and self.tok.kind is Tok.SEMICOLON and self.tok.text == "\n":
            self.error(self.tok.pos, f"missing ',' before newline in {context}")
            self.next()
        return self.expect(op)

    def at_comma(self, context: str, follow: str) -> bool:
        if self.is_op(","):
            return True
        if not self.is_op(follow):
            message = "missing ','"
            if self.tok.kind is Tok.SEMICOLON and self.tok.text == "\n":
                message += " before newline"
            self.error(self.tok.pos, f"{message} in {context}")
            return True  # Go "inserts" the comma and goes on
        return False

    def advance_to_statement(self) -> None:
        while self.tok.kind is not Tok.EOF:
            if self.tok.kind is Tok.KEYWORD and self.tok.text in _STATEMENT_START:
                if self.tok.pos == self.sync_pos and self.sync_count < 10:
                    self.sync_count += 1
                    return
                if self.tok.pos > self.sync_pos:
                    self.sync_pos, self.sync_count = self.tok.pos, 0
                    return
            self.next()

    # -- grammar ------------------------------------------------------------------------------------

    def parse(self) -> object:
        try:
            node = self.binary(1)
            if self.tok.kind is Tok.SEMICOLON and self.tok.text == "\n":
                self.next()
            self.expect_eof()
        except _Bailout:
            node = None
        if self.errors:
            raise self.failure()
        return node

    def expect_eof(self) -> None:
        if self.tok.kind is not Tok.EOF:
            self.error_expected(self.tok.pos, "'EOF'")
            self.next()  # as Go's expect: the scanner reads one more token (and reports its errors)

    def failure(self) -> ParseError:
        # Go sorts by line, column (in bytes) and message, and names the first.
        ordered = sorted(self.errors, key=lambda e: (*line_col(self.text, e[0]), e[1]))
        pos, message = ordered[0]
        line, col = line_col(self.text, pos)
        more = f" (and {len(ordered) - 1} more errors)" if len(ordered) > 1 else ""
        return ParseError(f"unable to parse expression '{self.text}': {line}:{col}: {message}{more}", pos)

    def binary(self, min_prec: int) -> object:
        left = self.unary()
        while True:
            tok = self.tok
            op = tok.text if tok.kind is Tok.OP else ""
            if op == "=":
                op = "=="  # Go reads `=` here as a mistyped `==`, and says so (expect below)
            prec = _BINARY_PREC.get(op, 0)
            if prec < min_prec:
                return left
            pos = self.expect(op)
            right = self.binary(prec + 1)
            left = _Op(op, (left, right), pos)

    def unary(self) -> object:
        tok = self.tok
        if tok.kind is Tok.OP and tok.text in _UNARY:
            self.next()
            return _Op(tok.text, (self.unary(),), tok.pos)
        if tok.kind is Tok.OP and tok.text == "*":
            self.next()
            self.unary()
            return _Other("StarExpr", tok.pos)
        return self.primary()

    def primary(self) -> object:
        node = self.operand()
        while True:
            tok = self.tok
            if tok.kind is not Tok.OP:
                return node
            if tok.text == ".":
                self.next()
                if self.tok.kind is Tok.IDENT:
                    node = _Sel(node, self.tok.text, self.tok.pos)
                    self.next()
                elif self.is_op("("):
                    node = self.type_assertion(tok.pos)
                else:
                    self.error_expected(self.tok.pos, "selector or type assertion")
                    self.next()
                    node = _Sel(node, "_", tok.pos)
            elif tok.text == "[":
                node = self.index_or_slice(node)
            elif tok.text == "(":
                node = self.call(node)
            elif tok.text == "{" and _is_literal_type(node):
                node = self.composite(tok.pos)
            else:
                return node

    def operand(self) -> object:
        tok = self.tok
        if tok.kind is Tok.IDENT:
            self.next()
            return _Ident(tok.text, tok.pos)
        if tok.kind in LITERALS:
            self.next()
            return _Lit(tok)
        if tok.kind is Tok.OP and tok.text == "(":
            self.next()
            inner = self.binary(1)
            self.expect(")")
            return _Paren(inner)
        self.error_expected(tok.pos, "operand")
        self.advance_to_statement()
        return _Other("BadExpr", tok.pos)

    def index_or_slice(self, node: object) -> object:
        pos = self.expect("[")
        colons = 0
        index: object = None
        if not self.is_op(":"):
            index = self.binary(1)
        while self.is_op(":") and colons < 2:
            colons += 1
            self.next()
            if not (self.is_op(":") or self.is_op("]") or self.tok.kind is Tok.EOF):
                self.binary(1)
        self.expect("]")
        if colons:
            return _Other("SliceExpr", pos)
        return _Index(node, index, pos)

    def call(self, fun: object) -> object:
        pos = self.expect("(")
        args: list[object] = []
        while not self.is_op(")") and self.tok.kind is not Tok.EOF:
            args.append(self.binary(1))
            ellipsis = self.is_op("...")
            if ellipsis:
                self.next()
            if not self.at_comma("argument list", ")"):
                break
            self.next()
            if ellipsis:
                break
        self.expect_closing(")", "argument list")
        return _Call(fun, tuple(args), pos)

    def type_assertion(self, pos: int) -> object:
        self.expect("(")
        if self.tok.kind is Tok.KEYWORD and self.tok.text == "type":
            self.next()
        elif self.tok.kind is Tok.IDENT:
            self.next()
            if self.is_op("."):
                self.next()
                if self.tok.kind is Tok.IDENT:
                    self.next()
                else:
                    self.error_expected(self.tok.pos, "IDENT")
        else:
            self.error_expected(self.tok.pos, "type")
        self.expect(")")
        return _Other("TypeAssertExpr", pos)

    def composite(self, pos: int) -> object:
        self.expect("{")
        while not self.is_op("}") and self.tok.kind is not Tok.EOF:
            self.element()
            if not self.at_comma("composite literal", "}"):
                break
            self.next()
        self.expect_closing("}", "composite literal")
        return _Other("CompositeLit", pos)

    def element(self) -> None:
        if self.is_op("{"):
            self.composite(self.tok.pos)
        else:
            self.binary(1)
        if self.is_op(":"):
            self.next()
            if self.is_op("{"):
                self.composite(self.tok.pos)
            else:
                self.binary(1)


def _is_literal_type(node: object) -> bool:
    return isinstance(node, _Ident) or (isinstance(node, _Sel) and isinstance(node.x, _Ident))


def _describe(tok: Token) -> str:
    """How Go's parser names the token it found: a literal by its text, a newline as such, the rest quoted."""
    if tok.kind is Tok.SEMICOLON and tok.text == "\n":
        return "newline"
    if tok.kind in LITERALS:
        return tok.text
    if tok.kind is Tok.EOF:
        return "'EOF'"
    if tok.kind is Tok.ILLEGAL:
        return "'ILLEGAL'"
    return f"'{tok.text}'"


# -- Mixer's rewrite --------------------------------------------------------------------------------


class _Rewriter:
    """Mixer's `process`: its failures are bare messages (not "unable to parse expression")."""

    def __init__(self, text: str) -> None:
        self.text = text

    def error(self, pos: int, what: str) -> ParseError:
        return ParseError(what, pos)

    def unexpected(self, node: object) -> ParseError:
        kind = {
            _Ident: "Ident",
            _Lit: "BasicLit",
            _Sel: "SelectorExpr",
            _Call: "CallExpr",
            _Index: "IndexExpr",
        }
        name = node.kind if isinstance(node, _Other) else kind.get(type(node), "ParenExpr")
        return self.error(_start(node), f"unexpected expression: &ast.{name}{{...}}")

    def rewrite(self, node: object) -> Expression:
        if isinstance(node, _Paren):
            return self.rewrite(node.x)
        if isinstance(node, _Lit):
            return self.literal(node.tok)
        if isinstance(node, _Ident):
            lowered = node.name.lower()
            if lowered in ("true", "false"):  # Mixer lower-cases before comparing, and shows it lowered
                return Constant(lowered == "true", ValueType.BOOL, node.pos, lowered)
            return Variable(node.name, node.pos)
        if isinstance(node, _Sel):
            anchor, names = self.selectors(node)
            if anchor is not None:
                raise self.unexpected(node)
            return Variable(".".join(names), _start(node))
        if isinstance(node, _Index):
            return Function("INDEX", None, (self.rewrite(node.x), self.rewrite(node.index)), node.pos)
        if isinstance(node, _Op):
            args = tuple(self.rewrite(a) for a in node.args)
            return Function(_FUNCTION_NAMES.get(node.op, ""), None, args, node.pos)
        if isinstance(node, _Call):
            return self.call(node)
        raise self.unexpected(node)

    def call(self, node: _Call) -> Function:
        args = tuple(self.rewrite(a) for a in node.args)
        if isinstance(node.fun, _Ident):
            return Function(node.fun.name, None, args, node.fun.pos)
        if isinstance(node.fun, _Sel):  # a method: the last selector is its name
            anchor, names = self.selectors(node.fun)
            if anchor is None:
                target: Expression = Variable(".".join(names[:-1]), _start(node.fun))
            else:
                if len(names) != 1:
                    raise self.unexpected(node.fun)
                target = self.rewrite(anchor)
            return Function(names[-1], target, args, node.fun.pos)
        raise self.unexpected(node)

    def selectors(self, node: _Sel) -> tuple[object | None, list[str]]:
        """Mixer's flattenSelectors: (the call, literal or parenthesised expression the chain hangs on,
        or None for a plain name) and the names in order."""
        names = [node.name]
        x = node.x
        while isinstance(x, _Sel):
            names.append(x.name)
            x = x.x
        if isinstance(x, _Ident):
            names.append(x.name)
            return None, names[::-1]
        if isinstance(x, _Call | _Lit | _Paren | _Index):  # Mixer refused an index here (mixerd's addition)
            return x, names[::-1]
        raise self.unexpected(x)

    def literal(self, tok: Token) -> Constant:
        if tok.kind is Tok.INT:
            # Mixer reads integers with strconv.ParseInt(text, 10, 64): hex, binary, 0o-octal and `_`
            # separators fail, and a leading-zero literal is read as decimal.
            if not (tok.text.isascii() and tok.text.isdigit()):
                raise self.error(tok.pos, f"strconv.ParseInt: parsing {go_quote(tok.text)}: invalid syntax")
            value = int(tok.text, 10)
            if value > _INT64_MAX:
                raise self.error(
                    tok.pos, f"strconv.ParseInt: parsing {go_quote(tok.text)}: value out of range"
                )
            return Constant(value, ValueType.INT64, tok.pos, tok.text)
        if tok.kind is Tok.FLOAT:
            return Constant(_parse_float(tok), ValueType.DOUBLE, tok.pos, tok.text)
        if tok.kind in (Tok.STRING, Tok.CHAR):
            value = tok.value or ""
            try:  # the DURATION quirk: `"10ms"`, and `"0"`, are durations
                return Constant(Duration(parse_go_duration(value)), ValueType.DURATION, tok.pos, tok.text)
            except ValueError:
                return Constant(value, ValueType.STRING, tok.pos, tok.text)
        # An imaginary literal: Mixer has no type for it and fails to unquote it as a string.
        raise self.error(tok.pos, "invalid syntax")


def _parse_float(tok: Token) -> float:
    """strconv.ParseFloat(text, 64) on a literal Go's scanner accepted (hexadecimal floats included)."""
    text = tok.text.replace("_", "")  # the scanner has checked the separators
    try:
        value = float.fromhex(text) if text[:2].lower() == "0x" else float(text)
    except OverflowError:
        value = math.inf
    except ValueError:
        raise ParseError(
            f"strconv.ParseFloat: parsing {go_quote(tok.text)}: invalid syntax", tok.pos
        ) from None
    if math.isinf(value):  # Go refuses to round to infinity (ErrRange)
        raise ParseError(f"strconv.ParseFloat: parsing {go_quote(tok.text)}: value out of range", tok.pos)
    return value


def _start(node: object) -> int:
    while True:
        if isinstance(node, _Sel | _Index):
            node = node.x
        elif isinstance(node, _Call):
            node = node.fun
        elif isinstance(node, _Paren):
            node = node.x
        elif isinstance(node, _Op) and len(node.args) == 2:
            node = node.args[0]
        elif isinstance(node, _Lit):
            return node.tok.pos
        else:
            return getattr(node, "pos", 0)


def parse(text: str) -> Expression:
    """The syntax tree of CEXL `text`; ParseError with Go's or Mixer's text otherwise."""
    tree = _Parser(text).parse()
    return _Rewriter(text).rewrite(tree)
