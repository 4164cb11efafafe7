"""ReferencedAttributes: a bag's recorded lookups, encoded for the proxy's check cache (MIXER.md 8.5)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..api.mixer.v1 import mixer_pb2
from .bag import Condition, RawReferences, Reference
from .compressed import WordEncoder
from .dictionary import GLOBAL_WORDS

ReferencedAttributes = mixer_pb2.ReferencedAttributes


def encode_references(references: Iterable[Reference], global_word_count: int) -> ReferencedAttributes:
    """References as word indices: global ones only below the caller's `global_word_count`.

    A map-key reference carries the key's index in `map_key`; a whole-attribute reference leaves it 0,
    which the proxy reads as "the whole map" because it decodes map_key only for string maps. A key
    whose global index is 0 (the word `source.ip`) would read as "the whole map" too, so it goes into
    the message words instead (Mixer sent 0 and lost the key).
    """
    enc = WordEncoder(global_word_count)
    out = ReferencedAttributes()
    matches = out.attribute_matches
    for ref in references:
        match = matches.add(name=enc.index(ref.name), condition=int(ref.condition))
        if ref.key is not None:
            key = enc.index(ref.key)
            match.map_key = key if key != 0 else enc.message_index(ref.key)
    out.words.extend(enc.words)
    return out


_CACHE_LIMIT = 4096
_encoded: dict[tuple[int, RawReferences], bytes] = {}


def encode_reference_items(items: RawReferences, global_word_count: int) -> bytes:
    """`encode_references` for a bag's `reference_items()`, serialized, and cached by shape.

    References hold attribute names and map keys, never values, so the requests of one policy share a
    handful of shapes and the encoding is computed once per shape.
    """
    key = (global_word_count, items)
    found = _encoded.get(key)
    if found is None:
        refs = [Reference(r[0], c, r[1]) if isinstance(r, tuple) else Reference(r, c) for r, c in items]
        found = encode_references(refs, global_word_count).SerializeToString()
        if len(_encoded) >= _CACHE_LIMIT:
            _encoded.clear()  # a crude bound; shapes are few, so this almost never happens
        _encoded[key] = found
    return found


def decode_references(
    msg: ReferencedAttributes, is_string_map: Callable[[str], bool] | None = None
) -> list[Reference]:
    """The references in `msg` as a client reads them back (for the CLI and tests).

    Like the proxy, map_key is decoded only for string-map attributes (`is_string_map`), because 0 is
    both "no key" and the global index of `source.ip`; without the predicate a non-zero map_key counts.
    """

    def word(i: int) -> str:
        return GLOBAL_WORDS[i] if i >= 0 else msg.words[-i - 1]

    out = []
    for match in msg.attribute_matches:
        name = word(match.name)
        keyed = is_string_map(name) if is_string_map is not None else match.map_key != 0
        key = word(match.map_key) if keyed and match.map_key != 0 else None
        out.append(Reference(name, Condition(match.condition), key))
    return out
