"""The global dictionary: read line by line, never as YAML (MIXER.md 2.2, checklist item 1)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mixerd.attribute import GLOBAL_INDEX, GLOBAL_WORDS, parse_word_list


def _line_rule(text: str) -> list[str]:
    """Mixer's and the proxy's generators: every line starting with "-", dash cut, whitespace stripped."""
    out = []
    for line in text.split("\n"):
        if line[:1] == "-":
            out.append(line[1:].strip())
    return out


def test_exactly_222_words():
    assert len(GLOBAL_WORDS) == 222


@pytest.mark.parametrize(
    ("index", "word"),
    [
        (0, "source.ip"),
        (1, "source.port"),
        (15, "request.headers"),
        (31, ":authority"),
        (32, ":method"),
        (33, ":path"),
        (34, ":scheme"),
        (35, ":status"),
        (90, "GET"),
        (94, "'200'"),
        (111, "'0'"),
        (112, "'1'"),
        (113, "true"),
        (114, "false"),
        (134, "0"),
        (135, "1"),
        (136, "200"),
        (137, "302"),
        (149, "504"),
        (177, "connection.mtls"),
        (206, "UH"),
        (218, '"-"'),
        (219, "inbound"),
        (220, "outbound"),
        (221, "context.proxy_version"),
    ],
)
def test_word_at_index(index, word):
    assert GLOBAL_WORDS[index] == word
    assert GLOBAL_INDEX[word] == index


def test_quoted_words_keep_their_quote_characters():
    assert len(GLOBAL_WORDS[94]) == 5 and GLOBAL_WORDS[94][0] == GLOBAL_WORDS[94][-1] == "'"
    assert len(GLOBAL_WORDS[111]) == 3 and len(GLOBAL_WORDS[112]) == 3
    assert len(GLOBAL_WORDS[218]) == 3 and GLOBAL_WORDS[218] == '"' + "-" + '"'
    # The unquoted spellings are different words, at their own indices.
    assert GLOBAL_INDEX["200"] == 136
    assert "-" not in GLOBAL_INDEX


def test_no_duplicates_and_index_is_the_inverse():
    assert len(set(GLOBAL_WORDS)) == 222
    assert len(GLOBAL_INDEX) == 222
    assert all(GLOBAL_WORDS[i] == w for w, i in GLOBAL_INDEX.items())


def test_a_yaml_reader_would_get_it_wrong():
    """The reason for the line rule: YAML unquotes '200' and "-" and makes duplicates of 0, 1 and 200."""
    words = yaml.safe_load("\n".join(f"- {w}" for w in GLOBAL_WORDS))
    assert words[94] == "200" != GLOBAL_WORDS[94]
    assert words[218] == "-" != GLOBAL_WORDS[218]
    assert len({str(w) for w in words}) < 222


def test_matches_the_reference_file(reference_dir: Path):
    text = (reference_dir / "mixer-global-dictionary.yaml").read_text(encoding="utf-8")
    reference = _line_rule(text)
    assert len(reference) == 222
    assert list(GLOBAL_WORDS) == reference
    assert list(parse_word_list(text)) == reference


def test_parse_word_list_line_rule():
    text = (
        "# a comment\n"
        "- plain\n"
        "-   padded   \n"
        "- '200'\n"
        '- "-"\n'
        "  - indented lines are not words\n"
        "-no-space\n"
        "key: value\n"
        "- with # hash kept\r\n"
        "-\n"
    )
    assert parse_word_list(text) == ("plain", "padded", "'200'", '"-"', "no-space", "with # hash kept", "")
