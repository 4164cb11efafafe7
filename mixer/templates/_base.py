"""What a template is: its name, variety, fields (each an expression in an instance) and instance class.

Field shapes, from the template protos (MIXER.md 6):

| shape | in an instance's params | in the instance the adapter receives |
|---|---|---|
| typed (`string`, `int64`, `TimeStamp`, `IPAddress`, ...) | one expression of exactly that type | the value |
| `Value` | one expression of any type | the value (its type is in InstanceInfo.types) |
| `map<string, T>` | a mapping of key -> expression | dict |
| a nested message (authorization's subject) | a mapping of its fields | its own dataclass |

A field left out of the instance params is not evaluated; the adapter sees its zero value.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from ..attribute.values import Duration, Timestamp, ValueType
from ..params import camel


class Variety(IntEnum):
    """istio.mixer.adapter.model.v1beta1.TemplateVariety: when a template's instances are dispatched."""

    CHECK = 0
    REPORT = 1
    QUOTA = 2
    ATTRIBUTE_GENERATOR = 3
    CHECK_WITH_OUTPUT = 4


def handler_method(template: str) -> str:
    """The name of the handler method that receives `template`'s instances."""
    return f"handle_{template}"


#: The zero TIMESTAMP, 1970-01-01T00:00:00Z.
EPOCH: Timestamp = Timestamp(0)

#: The zero value of each typed field, what an adapter sees for a field the instance leaves out.
ZERO: dict[ValueType | None, Any] = {
    ValueType.STRING: "",
    ValueType.INT64: 0,
    ValueType.DOUBLE: 0.0,
    ValueType.BOOL: False,
    ValueType.TIMESTAMP: Timestamp(0),
    ValueType.DURATION: Duration(0),
    ValueType.IP_ADDRESS: b"",
    ValueType.DNS_NAME: "",
    ValueType.EMAIL_ADDRESS: "",
    ValueType.URI: "",
    ValueType.STRING_MAP: {},
    None: None,
}


@dataclass(frozen=True)
class Field:
    """One template field. `type` None means istio.policy.v1beta1.Value (any type)."""

    name: str  # snake_case, also the instance attribute
    type: ValueType | None = ValueType.STRING
    is_map: bool = False  # map<string, type>
    message: Message | None = None  # a nested message instead of a value
    json_name: str = ""  # the lowerCamel name, when the proto's name is not plain snake_case

    @property
    def names(self) -> tuple[str, ...]:
        """The spellings accepted in YAML."""
        return tuple(dict.fromkeys((self.name, self.json_name or camel(self.name))))

    def zero(self) -> Any:
        if self.message is not None:
            return self.message.cls()
        if self.is_map:
            return {}
        zero = ZERO[self.type]
        return dict(zero) if isinstance(zero, dict) else zero

    def describe(self) -> str:
        if self.message is not None:
            return self.message.cls.__name__
        base = "Value" if self.type is None else self.type.name
        return f"map<string, {base}>" if self.is_map else base


@dataclass(frozen=True)
class Message:
    """A nested message type: its fields and the dataclass that holds them."""

    fields: tuple[Field, ...]
    cls: type


@dataclass(frozen=True)
class Template:
    """A template: instances of it are built from expressions and sent to `handle_<name>`."""

    name: str
    variety: Variety
    fields: tuple[Field, ...]
    instance: type  # a dataclass with `name` (the instance FQN) and one attribute per field
    description: str = ""
    output: tuple[Field, ...] = ()  # ATTRIBUTE_GENERATOR: what the adapter returns
    package: str = ""  # the proto package; generators' outputs are named `<package with _>.output.<f>`

    @property
    def method(self) -> str:
        """The handler method that receives this template's instances."""
        return handler_method(self.name)

    @property
    def output_prefix(self) -> str:
        return (self.package or self.name).replace(".", "_") + ".output."
