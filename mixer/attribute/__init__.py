"""Attributes: the bag every rule reads, the global dictionary, wire (de)compression and the manifest."""

from .bag import AttributeBag, Condition, RawReferences, Reference
from .compressed import (
    CompressedAttributes,
    DecodeError,
    DictionaryMismatch,
    ReportTooLarge,
    WordEncoder,
    check_global_word_count,
    decode_attributes,
    decode_report,
    encode_attributes,
    encode_report,
    message_words,
)
from .dictionary import GLOBAL_INDEX, GLOBAL_WORDS, parse_word_list
from .manifest import BUILTIN_MANIFEST, AttributeInfo, AttributeManifest, ManifestError
from .referenced import decode_references, encode_reference_items, encode_references
from .values import Duration, Timestamp, ValueType

__all__ = [
    "BUILTIN_MANIFEST",
    "GLOBAL_INDEX",
    "GLOBAL_WORDS",
    "AttributeBag",
    "AttributeInfo",
    "AttributeManifest",
    "CompressedAttributes",
    "Condition",
    "DecodeError",
    "DictionaryMismatch",
    "Duration",
    "ManifestError",
    "RawReferences",
    "Reference",
    "ReportTooLarge",
    "Timestamp",
    "ValueType",
    "WordEncoder",
    "check_global_word_count",
    "decode_attributes",
    "decode_references",
    "decode_report",
    "encode_attributes",
    "encode_reference_items",
    "encode_references",
    "encode_report",
    "message_words",
    "parse_word_list",
]
