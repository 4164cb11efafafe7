"""CEXL tokens: Go's expression tokens (Mixer hands the text to Go's `parser.ParseExpr`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .errors import ParseError


class Tok(Enum):
    IDENT = "IDENT"
    INT = "INT"
    FLOAT = "FLOAT"
    IMAG = "IMAG"
    CHAR = "CHAR"
    STRING = "STRING"
    OP = "OP"
    EOF = "EOF"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Tok
    text: str  # the operator, identifier or literal source text
    pos: int
    value: str | None = None  # decoded string / char literals


# Longest first, so `&^` wins over `&` and `<<` over `<`.
_OPERATORS = sorted(
    [
        "&^=",
        "<<=",
        ">>=",
        "...",
        "&&",
        "||",
        "==",
        "!=",
        "<=",
        ">=",
        "<<",
        ">>",
        "&^",
        "<-",
        ":=",
        "+=",
        "-=",
        "*=",
        "/=",
        "%=",
        "&=",
        "|=",
        "^=",
        "++",
        "--",
        "+",
        "-",
        "*",
        "/",
        "%",
        "&",
        "|",
        "^",
        "<",
        ">",
        "!",
        "=",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ",",
        ".",
        ";",
        ":",
        "~",
    ],
    key=len,
    reverse=True,
)
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def _is_letter(c: str) -> bool:
    return c == "_" or c.isalpha()


def _is_digit(c: str) -> bool:
    return c.isdigit()


def _ends_statement(tok: Token) -> bool:
    """Whether Go's lexer would insert a semicolon at a newline after `tok`."""
    if tok.kind is Tok.OP:
        return tok.text in (")", "]", "}", "++", "--")
    return tok.kind in (Tok.IDENT, Tok.INT, Tok.FLOAT, Tok.IMAG, Tok.CHAR, Tok.STRING)


def tokenize(text: str) -> list[Token]:
    """All tokens of `text`, ending with EOF; ParseError names the offending offset."""
    tokens: list[Token] = []
    semicolon: tuple[int, int] | None = None  # (tokens before it, offset) of an inserted semicolon
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n" and semicolon is None and tokens and _ends_statement(tokens[-1]):
            # Go inserts a semicolon here: fine at the very end, but `ai\n== 20` is not one expression.
            semicolon = (len(tokens), i)
        if c in " \t\r\n":
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise ParseError(_msg(text, i, "comment not terminated"), i)
            i = end + 2
        elif _is_letter(c):
            j = i + 1
            while j < n and (_is_letter(text[j]) or _is_digit(text[j])):
                j += 1
            tokens.append(Token(Tok.IDENT, text[i:j], i))
            i = j
        elif ("0" <= c <= "9") or (c == "." and i + 1 < n and "0" <= text[i + 1] <= "9"):
            i = _number(text, i, tokens)
        elif c == '"':
            i = _interpreted(text, i, '"', tokens)
        elif c == "'":
            i = _interpreted(text, i, "'", tokens)
        elif c == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise ParseError(_msg(text, i, "raw string literal not terminated"), i)
            body = text[i + 1 : end].replace("\r", "")  # Go drops carriage returns in raw strings
            tokens.append(Token(Tok.STRING, text[i : end + 1], i, body))
            i = end + 1
        else:
            for op in _OPERATORS:
                if text.startswith(op, i):
                    tokens.append(Token(Tok.OP, op, i))
                    i += len(op)
                    break
            else:
                raise ParseError(_msg(text, i, f"illegal character {c!r}"), i)
    if semicolon is not None and semicolon[0] < len(tokens):
        raise ParseError(_msg(text, semicolon[1], "expected 'EOF', found newline"), semicolon[1])
    tokens.append(Token(Tok.EOF, "", n))
    return tokens


def _msg(text: str, pos: int, what: str) -> str:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"unable to parse expression '{text}': {line}:{col}: {what}"


def _number(text: str, i: int, out: list[Token]) -> int:
    """Go number literals, kept as text: the parser decides what Mixer accepts (base-10 only)."""
    n = len(text)
    j = i
    if text.startswith(("0x", "0X", "0b", "0B", "0o", "0O"), i):
        j = i + 2
        while j < n and (text[j].isalnum() or text[j] in "_."):
            if text[j] in "pP" and j + 1 < n and text[j + 1] in "+-":
                j += 1
            j += 1
        kind = Tok.INT
    else:
        kind = Tok.INT
        while j < n and (_is_digit(text[j]) or text[j] == "_"):
            j += 1
        if j < n and text[j] == ".":
            kind = Tok.FLOAT
            j += 1
            while j < n and (_is_digit(text[j]) or text[j] == "_"):
                j += 1
        if j < n and text[j] in "eE":
            kind = Tok.FLOAT
            j += 1
            if j < n and text[j] in "+-":
                j += 1
            start = j
            while j < n and _is_digit(text[j]):
                j += 1
            if j == start:
                raise ParseError(_msg(text, i, "exponent has no digits"), i)
    if j < n and text[j] == "i":
        out.append(Token(Tok.IMAG, text[i : j + 1], i))
        return j + 1
    out.append(Token(kind, text[i:j], i))
    return j


def _interpreted(text: str, i: int, quote: str, out: list[Token]) -> int:
    """A `"..."` string or `'c'` char literal with Go's escapes."""
    n = len(text)
    j = i + 1
    chars: list[str] = []
    while True:
        if j >= n or text[j] == "\n":
            what = "string" if quote == '"' else "rune"
            raise ParseError(_msg(text, i, f"{what} literal not terminated"), i)
        c = text[j]
        if c == quote:
            break
        if c != "\\":
            chars.append(c)
            j += 1
            continue
        j += 1
        e = text[j] if j < n else ""
        if e in _SIMPLE_ESCAPES:
            chars.append(_SIMPLE_ESCAPES[e])
            j += 1
        elif e == quote:
            chars.append(e)
            j += 1
        elif e in "01234567" and e:
            digits = text[j : j + 3]
            if len(digits) < 3 or any(d not in "01234567" for d in digits) or int(digits, 8) > 255:
                raise ParseError(_msg(text, j - 1, "invalid octal escape"), j - 1)
            chars.append(chr(int(digits, 8)))
            j += 3
        elif e in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[e]
            digits = text[j + 1 : j + 1 + width]
            if len(digits) < width or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise ParseError(_msg(text, j - 1, "invalid escape sequence"), j - 1)
            code = int(digits, 16)
            if e != "x" and (code > 0x10FFFF or 0xD800 <= code < 0xE000):
                raise ParseError(_msg(text, j - 1, "escape sequence is invalid Unicode code point"), j - 1)
            chars.append(chr(code))
            j += 1 + width
        else:
            raise ParseError(_msg(text, j - 1, "unknown escape sequence"), j - 1)
    value = "".join(chars)
    if quote == "'" and len(value) != 1:
        raise ParseError(_msg(text, i, "illegal rune literal"), i)
    out.append(Token(Tok.CHAR if quote == "'" else Tok.STRING, text[i : j + 1], i, value))
    return j + 1
