"""tracespan (REPORT): one span of a distributed trace, for tracing backends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..attribute.values import Timestamp, ValueType
from ._base import EPOCH, Field, Template, Variety

_S, _I, _B, _T, _IP = (
    ValueType.STRING,
    ValueType.INT64,
    ValueType.BOOL,
    ValueType.TIMESTAMP,
    ValueType.IP_ADDRESS,
)


@dataclass(slots=True)
class TraceSpanInstance:
    name: str = ""
    trace_id: str = ""
    span_id: str = ""
    parent_span_id: str = ""
    span_name: str = ""
    start_time: Timestamp = EPOCH
    end_time: Timestamp = EPOCH
    span_tags: dict[str, Any] = field(default_factory=dict)
    http_status_code: int = 0
    client_span: bool = False
    rewrite_client_span_id: bool = False
    source_name: str = ""
    source_ip: bytes = b""
    destination_name: str = ""
    destination_ip: bytes = b""
    request_size: int = 0
    request_total_size: int = 0
    response_size: int = 0
    response_total_size: int = 0
    api_protocol: str = ""


TEMPLATE = Template(
    name="tracespan",
    variety=Variety.REPORT,
    fields=(
        Field("trace_id"),
        Field("span_id"),
        Field("parent_span_id"),
        Field("span_name"),
        Field("start_time", _T),
        Field("end_time", _T),
        Field("span_tags", None, is_map=True),
        # The proto spells this field httpStatusCode (not snake_case); both spellings are accepted.
        Field("http_status_code", _I, json_name="httpStatusCode"),
        Field("client_span", _B),
        Field("rewrite_client_span_id", _B),
        Field("source_name"),
        Field("source_ip", _IP),
        Field("destination_name"),
        Field("destination_ip", _IP),
        Field("request_size", _I),
        Field("request_total_size", _I),
        Field("response_size", _I),
        Field("response_total_size", _I),
        Field("api_protocol"),
    ),
    instance=TraceSpanInstance,
    description="A span of a distributed trace, with its timing, peers, sizes and tags.",
)
