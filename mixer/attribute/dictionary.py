"""The global dictionary: the word list that gives word indices >= 0 their meaning.

Mixer and the Istio proxy never parse this file as YAML: their generators take every line starting with
"-", cut the dash, strip whitespace and keep the rest literally. We read it the same way, so `'200'`
keeps its single quotes and `"-"` its double quotes; a YAML reader would get different words.
"""

from __future__ import annotations

from importlib import resources


def parse_word_list(text: str) -> tuple[str, ...]:
    """The words of a dictionary file, read line by line the way Mixer and the proxy read it."""
    return tuple(line[1:].strip() for line in text.splitlines() if line.startswith("-"))


def _load() -> tuple[str, ...]:
    text = resources.files(__package__).joinpath("global_dictionary.yaml").read_text(encoding="utf-8")
    return parse_word_list(text)


#: The global dictionary: GLOBAL_WORDS[i] is the word with global index i.
GLOBAL_WORDS: tuple[str, ...] = _load()

#: Word -> global index. Mixer lets a later index overwrite an earlier one; the literal reading has no
#: duplicates, so the order of construction does not matter here.
GLOBAL_INDEX: dict[str, int] = {word: i for i, word in enumerate(GLOBAL_WORDS)}
