"""reportnothing (REPORT): an instance with no fields, for reports that need no data."""

from __future__ import annotations

from dataclasses import dataclass

from ._base import Template, Variety


@dataclass(slots=True)
class ReportNothingInstance:
    name: str = ""


TEMPLATE = Template(
    name="reportnothing",
    variety=Variety.REPORT,
    fields=(),
    instance=ReportNothingInstance,
    description="No data: the handler learns only that a matching request happened.",
)
