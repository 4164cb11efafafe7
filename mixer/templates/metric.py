"""metric (REPORT): a value with dimensions, for Prometheus, statsd and other metric backends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._base import Field, Template, Variety


@dataclass(slots=True)
class MetricInstance:
    name: str = ""
    value: Any = None
    dimensions: dict[str, Any] = field(default_factory=dict)
    monitored_resource_type: str = ""
    monitored_resource_dimensions: dict[str, Any] = field(default_factory=dict)


TEMPLATE = Template(
    name="metric",
    variety=Variety.REPORT,
    fields=(
        Field("value", None),
        Field("dimensions", None, is_map=True),
        Field("monitored_resource_type"),
        Field("monitored_resource_dimensions", None, is_map=True),
    ),
    instance=MetricInstance,
    description="A measurement (value) and the dimensions it is reported under.",
)
