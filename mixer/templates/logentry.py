"""logentry (REPORT): one log record, for stdio, Fluentd and other log backends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..attribute.values import Timestamp, ValueType
from ._base import EPOCH, Field, Template, Variety


@dataclass(slots=True)
class LogEntryInstance:
    name: str = ""
    variables: dict[str, Any] = field(default_factory=dict)
    timestamp: Timestamp = EPOCH
    severity: str = ""
    monitored_resource_type: str = ""
    monitored_resource_dimensions: dict[str, Any] = field(default_factory=dict)


TEMPLATE = Template(
    name="logentry",
    variety=Variety.REPORT,
    fields=(
        Field("variables", None, is_map=True),
        Field("timestamp", ValueType.TIMESTAMP),
        Field("severity"),
        Field("monitored_resource_type"),
        Field("monitored_resource_dimensions", None, is_map=True),
    ),
    instance=LogEntryInstance,
    description="A log entry: named variables, a timestamp and a severity.",
)
