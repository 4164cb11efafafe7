"""AttributeBag: the attributes of one request, with typed reads and reference tracking.

Every lookup records what the answer depended on, the way Mixer's proto bag does (MIXER.md 8.5): an
attribute that was found is EXACT, one that was not is ABSENCE; a string-map key lookup records the
(map, key) pair instead. Check turns these records into ReferencedAttributes, the shape of the proxy's
cache key. Recording is one dict store per lookup, so it stays on in the hot path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class Condition(IntEnum):
    """istio.mixer.v1.ReferencedAttributes.Condition, with the same numbers."""

    CONDITION_UNSPECIFIED = 0
    ABSENCE = 1
    EXACT = 2
    REGEX = 3


@dataclass(frozen=True, slots=True)
class Reference:
    """One recorded lookup: attribute `name` (and string-map `key`, when one was looked up)."""

    name: str
    condition: Condition
    key: str | None = None


#: A bag's recorded lookups as plain data: ((name or (name, key)), Condition) pairs in record order.
#: Hashable, so encodings of the same shape can be cached (they hold names, never values).
RawReferences = tuple[tuple[str | tuple[str, str], Condition], ...]

_EXACT = Condition.EXACT
_ABSENCE = Condition.ABSENCE
_MISSING: Any = object()


class AttributeBag:
    """The attributes of one request (name -> value) and the record of which ones were read.

    `get`, `contains` and `map_get` record references; `peek` and iteration do not (they are for
    code that is not deciding a policy outcome, such as logging). Values are never None.
    """

    __slots__ = ("_generated", "_refs", "_values")

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self._values: dict[str, Any] = dict(values) if values else {}
        # Keys are attribute names (str) or (name, map key) tuples; insertion-ordered, first record wins.
        self._refs: dict[str | tuple[str, str], Condition] = {}
        # Attributes made by attribute generators, consulted only where the request has none.
        self._generated: dict[str, Any] | None = None

    @classmethod
    def wrap(cls, values: dict[str, Any]) -> AttributeBag:
        """A bag over `values` without copying it (the caller hands the dict over)."""
        bag = cls.__new__(cls)
        bag._values = values
        bag._refs = {}
        bag._generated = None
        return bag

    def merge_under(self, generated: Mapping[str, Any]) -> None:
        """Add attribute-generator output *under* the request's attributes (MIXER.md 6.3).

        What the request carries wins; generated values only fill gaps, and reading them records no
        reference (the proxy did not send them, so they cannot be part of its cache key).
        """
        if not generated:
            return
        own = self._values
        extra = {k: v for k, v in generated.items() if k not in own and v is not None}
        if extra:
            if self._generated is None:
                self._generated = extra
            else:
                self._generated.update(extra)

    # -- reads that record ------------------------------------------------------------------------

    def get(self, name: str) -> Any | None:
        """The value of `name`, or None when absent; records EXACT or ABSENCE."""
        value = self._values.get(name, _MISSING)
        if value is _MISSING:
            generated = self._generated
            if generated is not None and name in generated:
                return generated[name]
            self._refs.setdefault(name, _ABSENCE)
            return None
        self._refs.setdefault(name, _EXACT)
        return value

    def contains(self, name: str) -> bool:
        """Whether `name` is present; records EXACT or ABSENCE."""
        return self.get(name) is not None

    def get_map(self, name: str) -> Any | None:
        """The whole value of string map `name`, or None; records only ABSENCE (MIXER.md 8.5: fetching
        a whole map records nothing by itself, its keys are recorded when they are looked up)."""
        value = self._values.get(name)
        if value is None:
            generated = self._generated
            if generated is not None and name in generated:
                return generated[name]
            self._refs.setdefault(name, _ABSENCE)
        return value

    def map_get(self, name: str, key: str) -> str | None:
        """The value under `key` in string map `name`, or None; records (name, key) EXACT or ABSENCE.

        A missing map records `name` ABSENCE, with no key, as Mixer does.
        """
        mapping = self._values.get(name, _MISSING)
        if mapping is _MISSING:
            generated = self._generated
            if generated is not None and name in generated:
                return generated[name].get(key)
            self._refs.setdefault(name, _ABSENCE)
            return None
        value = mapping.get(key)
        self._refs.setdefault((name, key), _ABSENCE if value is None else _EXACT)
        return value

    def get_typed(self, name: str, kind: type) -> Any | None:
        """`get`, checking the Python type (see mixerd.attribute.values); TypeError names the attribute."""
        value = self.get(name)
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"error converting value to {kind.__name__}: attribute {name!r} holds {value!r}")
        return value

    # -- reads that do not record -----------------------------------------------------------------

    def peek(self, name: str) -> Any | None:
        """The value of `name` without recording a reference."""
        value = self._values.get(name)
        if value is None and self._generated is not None:
            return self._generated.get(name)
        return value

    def names(self) -> list[str]:
        return list(self.as_dict())

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(self.as_dict().items())

    def as_dict(self) -> dict[str, Any]:
        """A copy of the values, generated ones included."""
        if self._generated is None:
            return dict(self._values)
        return {**self._generated, **self._values}

    def __len__(self) -> int:
        return len(self._values) + (len(self._generated) if self._generated else 0)

    def __repr__(self) -> str:
        return f"AttributeBag({self._values!r})"

    # -- references -------------------------------------------------------------------------------

    def references(self) -> list[Reference]:
        """What this bag's lookups depended on, in the order they were first made."""
        out = []
        for ref, condition in self._refs.items():
            if isinstance(ref, tuple):
                out.append(Reference(ref[0], condition, ref[1]))
            else:
                out.append(Reference(ref, condition))
        return out

    def reference_items(self) -> RawReferences:
        """The recorded lookups as a hashable tuple (see RawReferences)."""
        return tuple(self._refs.items())

    @property
    def raw_references(self) -> Mapping[str | tuple[str, str], Condition]:
        """The recorded lookups as stored: name or (name, key) -> Condition."""
        return self._refs

    def clear_references(self) -> None:
        self._refs.clear()

    def mark_references(self) -> int:
        """A mark of the references recorded so far, for `reset_references`."""
        return len(self._refs)

    def reset_references(self, mark: int) -> None:
        """Forget the references recorded after `mark` (each quota starts from the state after
        preprocessing, MIXER.md 8.1 step 9)."""
        refs = self._refs
        if len(refs) > mark:
            for key in list(refs)[mark:]:
                del refs[key]
