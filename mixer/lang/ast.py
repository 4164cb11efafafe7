"""CEXL syntax tree: constants, attribute variables and function applications (Mixer's `pkg/lang/ast`).

Operators are already function applications here (`a == 2` is `EQ($a, 2)`), so the checker and the
compiler deal with three node kinds only. `str()` gives Mixer's prefix form, which error texts quote; a
constant shows as it was written (`"10ms"` keeps its quotes, `'c'` its single quotes), as Mixer's do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mixerd.attribute.godur import format_go_duration
from mixerd.attribute.values import ValueType


class Expression:
    """Base class of the three node kinds; `pos` is the 0-based offset in the source text."""

    __slots__ = ()
    pos: int


def _format_value(value: Any, vtype: ValueType) -> str:
    if vtype == ValueType.STRING:
        return json.dumps(value, ensure_ascii=False)  # Go's %q for the common cases
    if vtype == ValueType.BOOL:
        return "true" if value else "false"
    if vtype == ValueType.DURATION:
        return format_go_duration(int(value))
    return repr(value) if isinstance(value, float) else str(value)


@dataclass(frozen=True, slots=True)
class Constant(Expression):
    value: Any
    type: ValueType
    pos: int = field(default=0, compare=False)
    # The literal as written (Mixer's StrValue); empty for a constant made in code.
    text: str = field(default="", compare=False)

    def __str__(self) -> str:
        return self.text or _format_value(self.value, self.type)


@dataclass(frozen=True, slots=True)
class Variable(Expression):
    name: str
    pos: int = field(default=0, compare=False)

    def __str__(self) -> str:
        return f"${self.name}"


@dataclass(frozen=True, slots=True)
class Function(Expression):
    name: str
    target: Expression | None
    args: tuple[Expression, ...]
    pos: int = field(default=0, compare=False)

    def __str__(self) -> str:
        prefix = f"{self.target}:" if self.target is not None else ""
        return f"{prefix}{self.name}({', '.join(str(a) for a in self.args)})"
