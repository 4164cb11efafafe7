"""checknothing (CHECK): an instance with no fields, for checks that need no data (denier)."""

from __future__ import annotations

from dataclasses import dataclass

from ._base import Template, Variety


@dataclass(slots=True)
class CheckNothingInstance:
    name: str = ""


TEMPLATE = Template(
    name="checknothing",
    variety=Variety.CHECK,
    fields=(),
    instance=CheckNothingInstance,
    description="No data: the rule's match alone decides whether the handler is asked.",
)
