"""CEXL tokens: Go's scanner, as Mixer ran it (Go 1.13's `parser.ParseExpr`).

The scanner never stops at a problem: like Go's, it records the error on the token being scanned and goes
on (an illegal character becomes an ILLEGAL token, an unterminated string still a STRING), so the parser
can report errors in Go's order. Go's automatic semicolon after a line's last identifier, literal, `)`
or `]` is a SEMICOLON token with the text "\\n".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Tok(Enum):
    IDENT = "IDENT"
    INT = "INT"
    FLOAT = "FLOAT"
    IMAG = "IMAG"
    CHAR = "CHAR"
    STRING = "STRING"
    KEYWORD = "KEYWORD"
    OP = "OP"
    SEMICOLON = "SEMICOLON"
    ILLEGAL = "ILLEGAL"
    EOF = "EOF"


#: Go's literal tokens: an error names their text (`found 2`), not their kind.
LITERALS = frozenset({Tok.IDENT, Tok.INT, Tok.FLOAT, Tok.IMAG, Tok.CHAR, Tok.STRING})

#: A scanner error: (0-based character offset, Go's message).
ScanError = tuple[int, str]


@dataclass(frozen=True, slots=True)
class Token:
    kind: Tok
    text: str  # the operator, keyword or identifier, or a literal's source text
    pos: int
    value: str | None = None  # decoded string / char literals
    errors: tuple[ScanError, ...] = ()  # what Go's scanner reported while reading this token


KEYWORDS = frozenset(
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

# Tried longest first, so `&^` wins over `&` and `<<` over `<`.
_OPERATORS = frozenset(
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
        ":",
        "~",
    ]
)
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_SEMI_AFTER_KEYWORDS = frozenset({"break", "continue", "fallthrough", "return"})


def go_rune(c: str) -> str:
    """A character as Go's %#U prints it: `U+0040 '@'`, without the quoted form when not printable."""
    code = f"U+{ord(c):04X}"
    return f"{code} '{c}'" if c.isprintable() else code


def _is_letter(c: str) -> bool:
    return c == "_" or c.isalpha()


def _ends_statement(tok: Token) -> bool:
    """Whether Go's scanner inserts a semicolon at a newline after `tok`."""
    if tok.kind is Tok.OP:
        return tok.text in (")", "]", "}", "++", "--")
    if tok.kind is Tok.KEYWORD:
        return tok.text in _SEMI_AFTER_KEYWORDS
    return tok.kind in LITERALS


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[Token] = []
        self.errors: list[ScanError] = []  # for the token being scanned

    def emit(self, kind: Tok, text: str, pos: int, value: str | None = None) -> None:
        self.tokens.append(Token(kind, text, pos, value, tuple(self.errors)))
        self.errors = []

    def error(self, pos: int, message: str) -> None:
        self.errors.append((pos, message))

    def semicolon_pending(self) -> bool:
        return bool(self.tokens) and _ends_statement(self.tokens[-1])

    def run(self) -> list[Token]:
        text, n = self.text, len(self.text)
        i = 0
        while i < n:
            c = text[i]
            if c == "\n" and self.semicolon_pending():
                self.emit(Tok.SEMICOLON, "\n", i)
                i += 1
            elif c in " \t\r\n":
                i += 1
            elif text.startswith("//", i):
                if self.semicolon_pending():
                    self.emit(Tok.SEMICOLON, "\n", i)
                end = text.find("\n", i)
                i = n if end < 0 else end + 1
            elif text.startswith("/*", i):
                end = text.find("*/", i + 2)
                if end < 0:
                    self.error(i, "comment not terminated")
                    i = n
                else:
                    if "\n" in text[i:end] and self.semicolon_pending():
                        self.emit(Tok.SEMICOLON, "\n", i)
                    i = end + 2
            elif _is_letter(c):
                j = i + 1
                while j < n and (_is_letter(text[j]) or text[j].isdigit()):
                    j += 1
                word = text[i:j]
                self.emit(Tok.KEYWORD if word in KEYWORDS else Tok.IDENT, word, i)
                i = j
            elif "0" <= c <= "9" or (c == "." and i + 1 < n and "0" <= text[i + 1] <= "9"):
                i = self.number(i)
            elif c == '"':
                i = self.interpreted(i, '"')
            elif c == "'":
                i = self.interpreted(i, "'")
            elif c == "`":
                end = text.find("`", i + 1)
                if end < 0:
                    self.error(i, "raw string literal not terminated")
                    literal, body, after = text[i:], text[i + 1 :], n
                else:
                    literal, body, after = text[i : end + 1], text[i + 1 : end], end + 1
                self.emit(Tok.STRING, literal, i, body.replace("\r", ""))  # Go drops \r in raw strings
                i = after
            else:
                op = next((text[i : i + k] for k in (3, 2, 1) if text[i : i + k] in _OPERATORS), "")
                if op:
                    self.emit(Tok.OP, op, i)
                    i += len(op)
                else:
                    if c == ";":
                        self.emit(Tok.SEMICOLON, ";", i)
                    else:
                        self.error(i, f"illegal character {go_rune(c)}")
                        self.emit(Tok.ILLEGAL, c, i)
                    i += 1
        if self.semicolon_pending():
            self.emit(Tok.SEMICOLON, "\n", n)
        self.emit(Tok.EOF, "", n)
        return self.tokens

    def digits(self, i: int, base: int, invalid: list[int]) -> tuple[int, int]:
        """Go's scanner.digits: where the run of digits and `_` ends, and bit 1 digit / bit 2 `_` seen."""
        text, seen = self.text, 0
        while i < len(text):
            c = text[i]
            if c == "_":
                seen |= 2
            elif base <= 10 and "0" <= c <= "9":
                seen |= 1
                if int(c) >= base and not invalid:
                    invalid.append(i)
            elif base == 16 and c in "0123456789abcdefABCDEF":
                seen |= 1
            else:
                break
            i += 1
        return i, seen

    def number(self, start: int) -> int:
        """Go 1.13's number literals, with its errors; the parser decides what Mixer accepts."""
        text, n = self.text, len(self.text)
        i, kind, base, prefix, seen = start, Tok.INT, 10, "", 0
        invalid: list[int] = []
        if text[i] != ".":
            if text[i] == "0":
                i += 1
                p = text[i].lower() if i < n else ""
                if p in ("x", "o", "b"):
                    i += 1
                    base, prefix = {"x": 16, "o": 8, "b": 2}[p], p
                else:
                    base, prefix, seen = 8, "0", 1
            i, more = self.digits(i, base, invalid)
            seen |= more
        if i < n and text[i] == ".":
            kind = Tok.FLOAT
            if prefix in ("o", "b"):
                self.error(i, f"invalid radix point in {_literal_name(prefix)}")
            i, more = self.digits(i + 1, base, invalid)
            seen |= more
        if not seen & 1:
            self.error(i, f"{_literal_name(prefix)} has no digits")
        e = text[i].lower() if i < n else ""
        if e in ("e", "p"):
            if e == "e" and prefix not in ("", "0"):
                self.error(i, f"'{text[i]}' exponent requires decimal mantissa")
            elif e == "p" and prefix != "x":
                self.error(i, f"'{text[i]}' exponent requires hexadecimal mantissa")
            kind = Tok.FLOAT
            i += 1
            if i < n and text[i] in "+-":
                i += 1
            i, more = self.digits(i, 10, [])
            seen |= more
            if not more & 1:
                self.error(i, "exponent has no digits")
        elif prefix == "x" and kind is Tok.FLOAT:
            self.error(i, "hexadecimal mantissa requires a 'p' exponent")
        if i < n and text[i] == "i":
            kind = Tok.IMAG
            i += 1
        literal = text[start:i]
        if kind is Tok.INT and invalid:
            self.error(invalid[0], f"invalid digit '{text[invalid[0]]}' in {_literal_name(prefix)}")
        if seen & 2:
            at = _invalid_separator(literal)
            if at >= 0:
                self.error(start + at, "'_' must separate successive digits")
        self.emit(kind, literal, start)
        return i

    def interpreted(self, start: int, quote: str) -> int:
        """A `"..."` string or `'c'` rune literal with Go's escapes and errors."""
        text, n = self.text, len(self.text)
        i = start + 1
        chars: list[str] = []
        count, valid = 0, True
        while True:
            if i >= n or text[i] == "\n":
                if quote == '"' or valid:
                    what = "string" if quote == '"' else "rune"
                    self.error(start, f"{what} literal not terminated")
                valid = False
                break
            c = text[i]
            i += 1
            if c == quote:
                break
            count += 1
            if c != "\\":
                chars.append(c)
                continue
            i, ok = self.escape(i, quote, chars)
            valid = valid and ok
        if quote == "'" and valid and count != 1:
            self.error(start, "illegal rune literal")
        kind = Tok.CHAR if quote == "'" else Tok.STRING
        self.emit(kind, text[start:i], start, "".join(chars))
        return i

    def escape(self, i: int, quote: str, out: list[str]) -> tuple[int, bool]:
        """The escape after a backslash at `i`: where it ends and whether it is valid."""
        text, n = self.text, len(self.text)
        e = text[i] if i < n else ""
        if e in _SIMPLE_ESCAPES or (e == quote and e):
            out.append(_SIMPLE_ESCAPES.get(e, e))
            return i + 1, True
        if e and e in "01234567":
            width, base, top, j = 3, 8, 255, i
        elif e in ("x", "u", "U") and e:
            width, base, top, j = {"x": 2, "u": 4, "U": 8}[e], 16, (255 if e == "x" else 0x10FFFF), i + 1
        else:
            self.error(i, "escape sequence not terminated" if i >= n else "unknown escape sequence")
            return i, False
        value = 0
        for _ in range(width):
            d = text[j] if j < n else ""
            digit = int(d, 16) if d and d in "0123456789abcdefABCDEF" else 99
            if digit >= base:
                bad = (
                    "escape sequence not terminated"
                    if j >= n
                    else f"illegal character {go_rune(d)} in escape sequence"
                )
                self.error(j, bad)
                return j, False
            value = value * base + digit
            j += 1
        if value > top or 0xD800 <= value < 0xE000:
            self.error(i, "escape sequence is invalid Unicode code point")
            return j, False
        out.append(chr(value))
        return j, True


def _literal_name(prefix: str) -> str:
    return {
        "x": "hexadecimal literal",
        "o": "octal literal",
        "0": "octal literal",
        "b": "binary literal",
    }.get(prefix, "decimal literal")


def _invalid_separator(literal: str) -> int:
    """Where a `_` in a number literal does not sit between digits (Go's invalidSep), or -1."""
    hex_digits = "0123456789abcdefABCDEF"
    x1, d, i = " ", ".", 0
    if len(literal) >= 2 and literal[0] == "0" and literal[1].lower() in "xob":
        x1, d, i = literal[1].lower(), "0", 2
    while i < len(literal):
        previous, c = d, literal[i]
        if c == "_":
            if previous != "0":
                return i
            d = "_"
        elif "0" <= c <= "9" or (x1 == "x" and c in hex_digits):
            d = "0"
        else:
            if previous == "_":
                return i - 1
            d = "."
        i += 1
    return len(literal) - 1 if d == "_" else -1


def tokenize(text: str) -> list[Token]:
    """All tokens of `text`, ending with EOF; scanner errors ride on the tokens they were found in."""
    return _Scanner(text).run()


def line_col(text: str, pos: int) -> tuple[int, int]:
    """Go's line and column of offset `pos`: 1-based, the column counted in UTF-8 bytes. A newline that
    ends the text starts no line of its own (Go's token.File ignores a line at the end of the file)."""
    body = text[:-1] if text.endswith("\n") else text
    line = body.count("\n", 0, pos) + 1
    start = body.rfind("\n", 0, pos) + 1
    return line, len(text[start:pos].encode("utf-8", "surrogatepass")) + 1
