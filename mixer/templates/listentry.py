"""listentry (CHECK): one value to look up in a list, for listchecker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._base import Field, Template, Variety


@dataclass(slots=True)
class ListEntryInstance:
    name: str = ""
    value: Any = None


TEMPLATE = Template(
    name="listentry",
    variety=Variety.CHECK,
    fields=(Field("value", None),),
    instance=ListEntryInstance,
    description="A value (a string or an IP address) to check against a list.",
)
