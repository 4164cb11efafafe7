"""mixerd.regex: RE2 with Go's syntax and messages, linear time, and the bounded per-request cache."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixerd.regex import RegexError, RequestPatterns, compile_regex, escape


@pytest.mark.parametrize(
    ("pattern", "text", "found"),
    [
        ("^(a+)+$", "a" * 40 + "!", False),
        ("^(a+)+$", "a" * 40, True),
        ("(x+x+)+y", "x" * 5000, False),
        ("(x+x+)+y", "x" * 5000 + "y", True),
        (".*foo.*bar", "foo" + "x" * 60_000, False),
        (".*foo.*bar", "foo" + "x" * 60_000 + "bar", True),
        ("(a|aa)*c", "a" * 60_000, False),
        ("(.*a){20}", "a" * 19 + "b" * 60_000, False),
    ],
)
def test_what_makes_a_backtracking_engine_explode_is_answered(pattern: str, text: str, found: bool) -> None:
    assert compile_regex(pattern).search(text) is found


def test_linear_time_is_a_behaviour() -> None:
    """Python's re needs far more than 30 s for this (2^n paths); RE2 needs microseconds."""
    started = time.monotonic()
    assert compile_regex("^(x+x+)+y$").search("x" * 100) is False
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("pattern", "text", "found"),
    [
        ("b", "abc", True),  # search, not a full match
        ("^b", "abc", False),
        ("^a$", "a\n", False),  # $: end of text only
        (r"\d", "٣", False),  # ASCII classes
        (r"\pN", "٣", True),
        ("(?i)k", "\u212a", True),
        (r"\Q\C\E", r"x\Cy", True),  # \C quoted is text
        ("a", "\ud800a", True),  # a lone surrogate does not raise
        ("", "", True),
    ],
)
def test_search_is_go_regexp_match_string(pattern: str, text: str, found: bool) -> None:
    assert compile_regex(pattern).search(text) is found


@pytest.mark.parametrize("text", ["a.b*(c)", "x\x00y", "é[?]", "\\Q\\E$^", "a\ud800b"])
def test_escape_matches_the_text_literally(text: str) -> None:
    regex = compile_regex(escape(text))
    assert regex.fullmatch(text) and not regex.fullmatch(text + "x")
    assert not compile_regex(escape("a.b")).search("axb")


def test_fullmatch_anchors_both_ends() -> None:
    regex = compile_regex("/api/.*")
    assert regex.fullmatch("/api/v1") and not regex.fullmatch("x/api/v1") and regex.search("x/api/v1")


@pytest.mark.parametrize(
    ("pattern", "message"),
    [  # Go 1.19's exact messages
        ("(", "error parsing regexp: missing closing ): `(`"),
        ("[a-", "error parsing regexp: missing closing ]: `[a-`"),
        ("a(?=b)", "error parsing regexp: invalid or unsupported Perl syntax: `(?=`"),
        (r"(a)\1", r"error parsing regexp: invalid escape sequence: `\1`"),
        (r"\Z", r"error parsing regexp: invalid escape sequence: `\Z`"),
        (r"\C", r"error parsing regexp: invalid escape sequence: `\C`"),
        ("a{1001}", "error parsing regexp: invalid repeat count: `{1001}`"),
        ("a**", "error parsing regexp: invalid nested repetition operator: `**`"),
        ("*a", "error parsing regexp: missing argument to repetition operator: `*`"),
        ("a\\", "error parsing regexp: trailing backslash at end of expression: ``"),
        ("(?P<>a)", "error parsing regexp: invalid named capture: `(?P<>`"),
    ],
)
def test_rejected_patterns_say_what_go_says(pattern: str, message: str) -> None:
    with pytest.raises(RegexError) as info:
        compile_regex(pattern)
    assert str(info.value) == message


def test_a_program_over_the_memory_budget_is_rejected() -> None:
    pattern = ".{1000}.{1000}.{1000}"
    assert compile_regex(pattern).search("x" * 3000)  # within the default 8 MiB
    with pytest.raises(RegexError, match="expression too large"):
        compile_regex(pattern, max_mem=64 << 10)


def test_request_patterns_keep_the_most_recently_used() -> None:
    patterns = RequestPatterns(max_entries=2)
    a = patterns.get("a")
    assert patterns.get("a") is a  # compiled once
    patterns.get("b")
    patterns.get("a")  # a is now the most recent, b the least
    patterns.get("c")  # evicts b
    assert len(patterns) == 2
    assert patterns.get("a") is a
    b_again = patterns.get("b")  # compiled anew, evicting c
    assert b_again.search("b") and len(patterns) == 2


def test_request_patterns_refuse_long_patterns_without_compiling() -> None:
    patterns = RequestPatterns(max_length=8)
    assert patterns.get("x" * 8).search("x" * 8)
    with pytest.raises(RegexError, match="longer than the 8"):
        patterns.get("x" * 9)
    assert len(patterns) == 1


def test_request_patterns_do_not_keep_rejected_ones() -> None:
    patterns = RequestPatterns()
    for _ in range(2):
        with pytest.raises(RegexError):
            patterns.get("(")
    assert len(patterns) == 0


# -- fuzz ---------------------------------------------------------------------------------------------------

_PATTERN_PIECES = st.sampled_from(
    ["a", "b", "é", ".", "*", "+", "?", "|", "(", ")", "(?:", "(?=", "[", "]", "^", "$", "{2}", "{1,3}",
     "{,2}", "\\", "\\d", "\\C", "\\Q", "\\E", "\\z", "\\Z", "\\pL", "\\1", "(?i)", "(?P<n>", "[[:alpha:]]"]
)  # fmt: skip
_TEXT = st.text(alphabet=st.sampled_from("ab.é\n*(\ud800"), max_size=30)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PATTERN_PIECES, max_size=10).map("".join), _TEXT)
def test_any_pattern_compiles_or_is_a_regex_error_and_answers_a_bool(pattern: str, text: str) -> None:
    try:
        regex = compile_regex(pattern)
    except RegexError as e:
        assert str(e).startswith("error parsing regexp: ")
        return
    assert regex.search(text) in (True, False)
    assert regex.fullmatch(text) in (True, False)
    assert RequestPatterns().get(pattern).search(text) is regex.search(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20), st.text(max_size=40))
def test_a_quoted_text_is_found_where_python_finds_it(needle: str, haystack: str) -> None:
    assert compile_regex(escape(needle)).search(haystack) is (needle in haystack)
