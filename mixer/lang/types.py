"""Function signatures and the Python classes that carry each value type at evaluation time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mixerd.attribute.values import Duration, Timestamp, ValueType

ANY = ValueType.VALUE_TYPE_UNSPECIFIED

# The exact class a bag holds for each type (MIXER.md 3.1; mixerd.attribute.values); the compiler's
# fast path tests `value.__class__ is cls`, the slow path accepts subclasses.
PYTHON_CLASS: dict[ValueType, type] = {
    ValueType.STRING: str,
    ValueType.DNS_NAME: str,
    ValueType.EMAIL_ADDRESS: str,
    ValueType.URI: str,
    ValueType.INT64: int,
    ValueType.DOUBLE: float,
    ValueType.BOOL: bool,
    ValueType.TIMESTAMP: Timestamp,
    ValueType.DURATION: Duration,
    ValueType.IP_ADDRESS: bytes,
    ValueType.STRING_MAP: dict,
}


@dataclass(frozen=True, slots=True)
class FunctionInfo:
    """One entry of the function table (Mixer's `ast.FunctionMetadata` plus its implementation).

    `arg_types` excludes the target of a method (`target_type`). ANY (VALUE_TYPE_UNSPECIFIED) means "any
    type, but every ANY argument must have the first ANY argument's type"; an ANY `return_type` is that type.
    `impl` is None for the operators the compiler writes inline (EQ, LAND, OR, conditional, INDEX, ...).
    """

    name: str
    arg_types: tuple[ValueType, ...]
    return_type: ValueType
    instance: bool = False
    target_type: ValueType = ANY
    impl: Callable[..., Any] | None = None
