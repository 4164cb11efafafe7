"""quota (QUOTA): the dimensions a quota is counted under, for memquota, redisquota and denier."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._base import Field, Template, Variety


@dataclass(slots=True)
class QuotaInstance:
    name: str = ""
    dimensions: dict[str, Any] = field(default_factory=dict)


TEMPLATE = Template(
    name="quota",
    variety=Variety.QUOTA,
    fields=(Field("dimensions", None, is_map=True),),
    instance=QuotaInstance,
    description="A quota request: the dimensions that pick its bucket (the amount comes from the Check).",
)
