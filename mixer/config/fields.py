"""Reading a spec mapping by its proto field names, the way protobuf JSON does (MIXER.md 5.1).

Each field may be written lowerCamel (`compiledAdapter`) or snake_case (`compiled_adapter`); writing
both is an error, and so is a field the message does not have. Paths name a field as it is written, so
an error points at text that is in the file (a field that is missing is named lowerCamel).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..params import camel

Problem = tuple[str, str]  # (field path, reason)


class Fields:
    """The fields of one mapping, read by their snake_case proto names."""

    __slots__ = ("_path", "_values", "_written")

    def __init__(self, path: str, values: dict[str, Any], written: dict[str, str]) -> None:
        self._path = path
        self._values = values
        self._written = written

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def get(self, name: str, default: Any = None) -> Any:
        """The field's value; `default` when it is absent or null."""
        value = self._values.get(name)
        return default if value is None else value

    def path(self, name: str) -> str:
        """The field's path, spelled as written (lowerCamel when it is not written)."""
        return f"{self._path}.{self._written.get(name, camel(name))}"


def read_fields(raw: Mapping[Any, Any], names: Sequence[str], path: str, problems: list[Problem]) -> Fields:
    """`raw`'s fields among `names` (snake_case); unknown and twice-given fields go to `problems`."""
    by_spelling = {spelling: name for name in names for spelling in (name, camel(name))}
    values: dict[str, Any] = {}
    written: dict[str, str] = {}
    for key, value in raw.items():
        name = by_spelling.get(str(key))
        if name is None:
            known = ", ".join(camel(n) for n in names)
            problems.append((f"{path}.{key}", f"unknown field (known: {known})"))
            continue
        if name in written:
            problems.append((f"{path}.{key}", f"field given twice (as {written[name]} and {key})"))
            continue
        written[name] = str(key)
        values[name] = value
    return Fields(path, values, written)


def type_name(value: Any) -> str:
    """A YAML value's kind, in the words an operator uses."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
