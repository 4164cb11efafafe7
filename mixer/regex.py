"""RE2 for every pattern a user writes that meets request data: linear time, Go's regexp syntax.

Mixer matched with Go's `regexp` package, an RE2 engine: time linear in the text, no backtracking, so a
rule like `"^(a+)+$".matches(request.headers["x"])` cannot stall the server on a hostile header. Python's
`re` backtracks; mixerd uses google-re2, the official RE2 bindings, and calls its engine directly (never
its Python-`re`-like wrapper around it, and never a fallback engine).

Semantics are Go's `regexp.MatchString` (`search`: unanchored, any match counts) and RE2's syntax, which is
Go's: no backreferences or lookaround, `\\z` (not `\\Z`), ASCII `\\d \\w \\s \\b`, `$` only at the end of
the text unless `(?m)`, `\\pN` and `\\p{Greek}`, repeat counts up to 1000. RE2 also accepts `\\C` (any one
byte), which Go rejects, and so does this module. What is left, checked against Go 1.19: `(?<name>re)` is
accepted (as Go 1.22 and later do), `[\\C]` is refused (Go reads the letter C), and a pattern whose
program passes the RE2 memory budget is refused (`expression too large`).

- `compile_regex(pattern)`: a `Regex`, or `RegexError` with Go's wording
  (``error parsing regexp: missing closing ): `(` ``). For patterns known at config load.
- `RequestPatterns`: a bounded cache for patterns that are only known per request (an attribute used as
  a pattern): at most `max_entries` compiled patterns, least recently used dropped first, and none longer
  than `max_length` characters, each compiled with a smaller RE2 memory budget.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import re2
from re2 import _re2  # the engine itself: Match() without the wrapper's per-call generator and decoding

__all__ = [
    "DEFAULT_MAX_MEM",
    "REQUEST_MAX_ENTRIES",
    "REQUEST_MAX_LENGTH",
    "REQUEST_MAX_MEM",
    "Regex",
    "RegexError",
    "RequestPatterns",
    "compile_regex",
    "escape",
]

#: RE2's own default memory budget (program and DFA cache) for one pattern from config.
DEFAULT_MAX_MEM = 8 << 20
#: Bounds for patterns that arrive with requests (see RequestPatterns).
REQUEST_MAX_ENTRIES = 128
REQUEST_MAX_LENGTH = 4096
REQUEST_MAX_MEM = 1 << 20

_UNANCHORED = _re2.RE2.Anchor.UNANCHORED
_ANCHOR_BOTH = _re2.RE2.Anchor.ANCHOR_BOTH


class RegexError(ValueError):
    """A pattern RE2 (and so Go) rejects, or one too long to compile per request."""


class Regex:
    """A compiled pattern: `search(text)`, a match anywhere; `fullmatch(text)`, the whole text matches."""

    __slots__ = ("_match", "pattern")

    def __init__(self, pattern: str, match: Callable[..., list[tuple[int, int]]]) -> None:
        self.pattern = pattern
        self._match = match

    def search(self, text: str) -> bool:
        # surrogatepass: a lone surrogate is not valid UTF-8, but must not raise; RE2 matches no rune there.
        data = text.encode("utf-8", "surrogatepass")
        return self._match(_UNANCHORED, data, 0, len(data))[0][0] >= 0

    def fullmatch(self, text: str) -> bool:
        data = text.encode("utf-8", "surrogatepass")
        return self._match(_ANCHOR_BOTH, data, 0, len(data))[0][0] >= 0

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r})"


def compile_regex(pattern: str, *, max_mem: int = DEFAULT_MAX_MEM) -> Regex:
    """`pattern` compiled by RE2 in UTF-8 mode; RegexError (Go's message) when Go would reject it."""
    options = re2.Options()
    options.log_errors = False  # RE2 would print every bad pattern to stderr, a caller's ones included
    options.never_capture = True  # only "is there a match" is asked: no submatch bookkeeping
    options.max_mem = max_mem
    engine = _re2.RE2(pattern.encode("utf-8", "surrogatepass"), options)
    if not engine.ok():
        raise RegexError(_go_message(engine.error(), pattern))
    bad = _go_only_rejects(pattern)
    if bad:
        raise RegexError(f"error parsing regexp: invalid escape sequence: `{bad}`")
    return Regex(pattern, engine.Match)


#: RE2's words for an error -> Go's (regexp/syntax ErrorCode), where they differ.
_GO_WORDS = {
    "missing )": "missing closing )",
    "missing ]": "missing closing ]",
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "invalid repetition size": "invalid repeat count",
    "bad repetition operator": "invalid nested repetition operator",
    "no argument for repetition operator": "missing argument to repetition operator",
    "invalid named capture group": "invalid named capture",
    "trailing \\": "trailing backslash at end of expression",
    "pattern too large - compile failed": "expression too large",
}


def _go_message(error: str | bytes, pattern: str) -> str:
    """RE2's `<what>: <where>` in Go's words: error parsing regexp: <what>: `<where>`."""
    text = error.decode("utf-8", "replace") if isinstance(error, bytes) else error
    what, sep, where = text.partition(": ")
    if not sep:  # "pattern too large - compile failed" names no part of the pattern: quote its start
        where = pattern if len(pattern) <= 100 else pattern[:100] + "..."
    go_what = _GO_WORDS.get(what, what)
    if what == "trailing \\":
        where = ""  # Go quotes nothing for it
    return f"error parsing regexp: {go_what}: `{where}`"


def _go_only_rejects(pattern: str) -> str | None:
    """The escape RE2 accepts but Go does not (`\\C`, any byte), if the pattern has one outside `\\Q..\\E`."""
    if "\\C" not in pattern:
        return None
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i] != "\\" or i + 1 == n:
            i += 1
            continue
        escaped = pattern[i + 1]
        if escaped == "C":
            return "\\C"
        if escaped == "Q":  # quoted text up to \E (or the end) is literal
            end = pattern.find("\\E", i + 2)
            i = n if end < 0 else end + 2
            continue
        i += 2
    return None


def escape(text: str) -> str:
    """A pattern that matches `text` literally (RE2's QuoteMeta; a lone surrogate passes through)."""
    return re2.escape(text.encode("utf-8", "surrogatepass")).decode("utf-8", "surrogatepass")


class RequestPatterns:
    """Compiled patterns that arrive with requests, bounded in number, length and RE2 memory.

    Worst case it holds `max_entries` RE2 objects of at most `max_mem` bytes each (program plus DFA
    cache; RE2 falls back to its slower, still linear, NFA rather than exceed it). A pattern longer than
    `max_length` characters is refused without compiling. Rejected patterns are not kept (compiling a
    short bad pattern costs microseconds). Safe to share between threads.
    """

    def __init__(
        self,
        max_entries: int = REQUEST_MAX_ENTRIES,
        max_length: int = REQUEST_MAX_LENGTH,
        max_mem: int = REQUEST_MAX_MEM,
    ) -> None:
        self.max_entries = max_entries
        self.max_length = max_length
        self.max_mem = max_mem
        # functools' LRU is C code and thread-safe; it keeps only successful compiles.
        self._compile = functools.lru_cache(maxsize=max_entries)(self._compile_one)

    def get(self, pattern: str) -> Regex:
        if len(pattern) > self.max_length:
            raise RegexError(
                f"error parsing regexp: pattern of {len(pattern)} characters is longer than the "
                f"{self.max_length} mixerd compiles per request"
            )
        return self._compile(pattern)

    def __len__(self) -> int:
        return self._compile.cache_info().currsize

    def clear(self) -> None:
        self._compile.cache_clear()

    def _compile_one(self, pattern: str) -> Regex:
        return compile_regex(pattern, max_mem=self.max_mem)
