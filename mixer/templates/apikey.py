"""apikey (CHECK): an API key and the operation it is used for."""

from __future__ import annotations

from dataclasses import dataclass

from ..attribute.values import Timestamp, ValueType
from ._base import EPOCH, Field, Template, Variety


@dataclass(slots=True)
class ApiKeyInstance:
    name: str = ""
    api: str = ""
    api_version: str = ""
    api_operation: str = ""
    api_key: str = ""
    timestamp: Timestamp = EPOCH


TEMPLATE = Template(
    name="apikey",
    variety=Variety.CHECK,
    fields=(
        Field("api"),
        Field("api_version"),
        Field("api_operation"),
        Field("api_key"),
        Field("timestamp", ValueType.TIMESTAMP),
    ),
    instance=ApiKeyInstance,
    description="An API key presented for an API operation.",
)
