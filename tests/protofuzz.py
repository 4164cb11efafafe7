"""Hypothesis strategies for arbitrary protobuf messages, driven by their descriptors.

`messages(SomeMessage)` draws messages of that type with any mix of fields set, nested messages (to a
depth), repeated and map fields, open enums (unknown numbers too), strings with NULs and non-ASCII,
and integers across their whole range: what a careless or hostile caller can put on the wire while
still sending well-formed protobuf. `wire(SomeMessage)` adds malformed variants: truncated, with a
flipped byte, or random bytes.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

_F = FieldDescriptor
_INT_RANGES = {
    _F.TYPE_INT32: (-(2**31), 2**31 - 1),
    _F.TYPE_SINT32: (-(2**31), 2**31 - 1),
    _F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    _F.TYPE_INT64: (-(2**63), 2**63 - 1),
    _F.TYPE_SINT64: (-(2**63), 2**63 - 1),
    _F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    _F.TYPE_UINT32: (0, 2**32 - 1),
    _F.TYPE_FIXED32: (0, 2**32 - 1),
    _F.TYPE_UINT64: (0, 2**64 - 1),
    _F.TYPE_FIXED64: (0, 2**64 - 1),
}
#: Text that trips parsers: NULs, separators, non-ASCII, lone surrogates are not valid UTF-8 in protobuf
#: strings, so they are left out (protobuf refuses to serialize them).
_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=24) | st.sampled_from(
    ["", "\x00", "1.2.3.4\x00", "::1%eth0", "10.0.0.1", "a:b", "x" * 300, "ß/ü?q=1#f", "%zz", "*"]
)


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t in _INT_RANGES:
        low, high = _INT_RANGES[t]
        return st.integers(low, high) | st.sampled_from([low, high, 0, -1 if low < 0 else 1])
    if t in (_F.TYPE_DOUBLE, _F.TYPE_FLOAT):
        width = 32 if t == _F.TYPE_FLOAT else 64
        return st.floats(width=width, allow_nan=True, allow_infinity=True)
    if t == _F.TYPE_BOOL:
        return st.booleans()
    if t == _F.TYPE_STRING:
        return _TEXT
    if t == _F.TYPE_BYTES:
        return st.binary(max_size=24) | st.sampled_from([b"", b"\x7f\x00\x00\x01", bytes(16), bytes(5)])
    if t == _F.TYPE_ENUM:
        # Proto3 enums are open: a number no value names must be handled as well as a named one.
        return st.sampled_from([v.number for v in field.enum_type.values]) | st.integers(-5, 1000)
    raise AssertionError(f"unhandled field type {t} of {field.full_name}")  # pragma: no cover


def _value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any] | None:
    if field.type in (_F.TYPE_MESSAGE, _F.TYPE_GROUP):
        return None if depth <= 0 else _fields(field.message_type, depth - 1)
    return _scalar(field)


def _fields(descriptor: Descriptor, depth: int) -> st.SearchStrategy[dict[str, Any]]:
    """A dict of field name -> value for some of `descriptor`'s fields (nested ones as dicts too)."""
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            value = _value(value_field, depth)
            if value is None:
                continue
            optional[field.name] = st.dictionaries(_scalar(key_field), value, max_size=3)
            continue
        value = _value(field, depth)
        if value is None:
            continue
        repeated = field.is_repeated
        optional[field.name] = st.lists(value, max_size=3) if repeated else value
    return st.fixed_dictionaries({}, optional=optional)


def _fill(message: Message, values: dict[str, Any]) -> Message:
    for name, value in values.items():
        field = message.DESCRIPTOR.fields_by_name[name]
        target = getattr(message, name)
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        if is_map:
            value_field = field.message_type.fields_by_name["value"]
            for key, item in value.items():
                if value_field.message_type is not None:
                    _fill(target[key], item)
                else:
                    target[key] = item
        elif field.is_repeated:
            for item in value:
                if field.message_type is not None:
                    _fill(target.add(), item)
                else:
                    target.append(item)
        elif field.message_type is not None:
            _fill(target, value)
            target.SetInParent()
        else:
            setattr(message, name, value)
    return message


def messages(cls: type[Message], depth: int = 4) -> st.SearchStrategy[Message]:
    """Well-formed messages of type `cls` with any mix of fields set."""
    return _fields(cls.DESCRIPTOR, depth).map(lambda values: _fill(cls(), values))


def _mangled(data: bytes, cut: int, at: int, byte: int) -> bytes:
    if not data:
        return bytes([byte])
    if cut % 2:
        return data[: at % len(data)]  # truncated mid-field
    position = at % len(data)
    return data[:position] + bytes([byte]) + data[position + 1 :]  # one byte replaced


def wire(cls: type[Message], depth: int = 4) -> st.SearchStrategy[bytes]:
    """What arrives on the wire for a method taking `cls`: its messages serialized, some of them mangled,
    and random bytes."""
    serialized = messages(cls, depth).map(lambda m: m.SerializeToString())
    mangled = st.builds(_mangled, serialized, st.integers(0, 1), st.integers(0, 2**16), st.integers(0, 255))
    return serialized | mangled | st.binary(max_size=200)
