"""tracespan instances as OTLP spans (opentelemetry.proto.trace.v1.Span), and export requests.

One instance is one span:

- ids from the instance's hex fields: trace_id 32 hex digits, or 16 (a 64-bit B3 id, padded on the
  left with zeros); span_id and parent_span_id 16 (parent empty for a root span); all-zero ids are
  invalid. An empty trace or span id means the request was not traced (no tracing headers): the
  instance is counted as untraced. Malformed ids make the instance invalid (skipped, counted);
- `rewrite_client_span_id` (Zipkin's shared-span model, where the client and the server report one
  span id): a client span gets the id derived from its span id (`derived_span_id`), and a server span
  gets that same derived id as its parent, so the trace reads parent -> client -> server;
- name = span_name; times; kind CLIENT for client spans, else SERVER;
- status ERROR for an HTTP status >= 500, and for 4xx on a client span (OpenTelemetry's HTTP
  conventions: a server that answered 4xx did its job); otherwise UNSET, with no message;
- attributes: the fixed fields under the names in FIXED_ATTRIBUTES, then span_tags (a tag overrides
  a fixed attribute of the same name). Values keep their type (string, int, double, bool; a string
  map as a key-value list); IP addresses, timestamps (RFC 3339) and durations (Go text) as strings;
- the resource's service.name: the source's name for a client span (the caller reports it), the
  destination's for a server span; `unknown_service` when that name is empty.

Sampling keeps a trace when the low 64 bits of its id, read as a number, are below probability * 2^64:
the same decision for every span of a trace, on every replica.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import re
import socket
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from mixerd import __version__
from mixerd.adapter import InstanceInfo
from mixerd.attribute.values import Duration, Timestamp
from mixerd.templates import TraceSpanInstance

#: The instrumentation scope every span is exported under.
SCOPE_NAME = "mixerd"
UNKNOWN_SERVICE = "unknown_service"

#: Instance field -> span attribute. Strings and IPs are left out when empty, the HTTP status when 0;
#: sizes when the instance does not set them (for an instance the handler was not told about: when 0).
FIXED_ATTRIBUTES: dict[str, str] = {
    "http_status_code": "http.response.status_code",
    "source_name": "source.name",
    "source_ip": "source.address",
    "destination_name": "destination.name",
    "destination_ip": "destination.address",
    "request_size": "http.request.body.size",
    "request_total_size": "http.request.size",
    "response_size": "http.response.body.size",
    "response_total_size": "http.response.size",
    "api_protocol": "api.protocol",
}
_SIZES = ("request_size", "request_total_size", "response_size", "response_total_size")
_IPS = ("source_ip", "destination_ip")
_INTS = ("http_status_code", *_SIZES)
# (field, attribute, kind) with the kind the template's field type guarantees: the request path sets
# the value directly instead of asking set_value.
_STR, _INT, _IP = 0, 1, 2
_FIXED = tuple(
    (field, key, _IP if field in _IPS else _INT if field in _INTS else _STR)
    for field, key in FIXED_ATTRIBUTES.items()
)
_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{16}")
_SPAN_ID = re.compile(r"[0-9a-fA-F]{16}")
_INT64 = range(-(1 << 63), 1 << 63)
_ALL_TRACES = 1 << 64


class Outcome(enum.Enum):
    """Why an instance gave no span, when that is no error."""

    UNTRACED = "untraced"  # no trace or span id: the request was not traced
    SAMPLED_OUT = "sampled out"


class InvalidSpan(ValueError):
    """An instance that cannot be a span; the message says why."""


Item = tuple[str, Span]  # (service.name, span): what the delivery queue holds


def derived_span_id(span_id: bytes) -> bytes:
    """The client span's id in the shared-span model: the first 8 bytes of a BLAKE2b hash of the shared
    id, so every replica derives the same one. Never all zeros."""
    derived = hashlib.blake2b(span_id, digest_size=8, person=b"mixerd-client").digest()
    return derived if any(derived) else b"\x00" * 7 + b"\x01"


def sampling_bound(probability: float) -> int:
    """Traces whose low 64 id bits are below this number are kept."""
    return _ALL_TRACES if probability >= 1 else max(0, round(probability * _ALL_TRACES))


class SpanMapper:
    """Makes spans from instances. `instances` (the handler's InstanceInfo by name) tell which optional
    fields each instance sets."""

    def __init__(self, instances: Mapping[str, InstanceInfo], sampling_probability: float = 1.0) -> None:
        self._bound = sampling_bound(sampling_probability)
        self._sets = {
            name: frozenset(f for f in _SIZES if f in info.types)
            for name, info in instances.items()
            if info.template == "tracespan"
        }

    def convert(self, instance: TraceSpanInstance) -> Item | Outcome:
        """The instance's span, or why there is none; InvalidSpan for an instance that cannot be one."""
        if not instance.trace_id or not instance.span_id:
            return Outcome.UNTRACED
        # A 64-bit trace id is padded on the left, as B3 and W3C propagators do.
        trace_id = _id(_TRACE_ID, instance.trace_id, "trace id", "16 or 32").rjust(16, b"\x00")
        if self._bound < _ALL_TRACES and int.from_bytes(trace_id[8:], "big") >= self._bound:
            return Outcome.SAMPLED_OUT
        span_id = _id(_SPAN_ID, instance.span_id, "span id", "16")
        parent = (
            _id(_SPAN_ID, instance.parent_span_id, "parent span id", "16") if instance.parent_span_id else b""
        )
        if instance.rewrite_client_span_id:
            if instance.client_span:
                span_id = derived_span_id(span_id)
            else:
                parent = derived_span_id(span_id)
        span = Span(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent,
            kind=Span.SPAN_KIND_CLIENT if instance.client_span else Span.SPAN_KIND_SERVER,
            start_time_unix_nano=max(0, int(instance.start_time)),
            end_time_unix_nano=max(0, int(instance.end_time)),
        )
        try:
            span.name = instance.span_name
            status = instance.http_status_code
            if status >= 500 or (instance.client_span and 400 <= status < 500):
                span.status.code = Status.STATUS_CODE_ERROR
            self._attributes(span, instance)
        except (ValueError, TypeError) as e:  # e.g. a string with a lone surrogate, which UTF-8 cannot carry
            raise InvalidSpan(f"a value cannot be sent: {e}") from None
        service = instance.source_name if instance.client_span else instance.destination_name
        return service or UNKNOWN_SERVICE, span

    def _attributes(self, span: Span, instance: TraceSpanInstance) -> None:
        tags = instance.span_tags
        sets = self._sets.get(instance.name)
        attributes = span.attributes
        for field, key, kind in _FIXED:
            if key in tags:
                continue
            value = getattr(instance, field)
            if field in _SIZES:
                if (value == 0 and sets is None) or (sets is not None and field not in sets):
                    continue
            elif not value:
                continue
            kv = attributes.add()
            kv.key = key
            if kind == _STR:
                kv.value.string_value = value
            elif kind == _INT:
                kv.value.int_value = value
            else:
                kv.value.string_value = ip_text(value)
        for key, value in tags.items():
            if value is None:
                continue
            kv = attributes.add()
            kv.key = key
            set_value(kv.value, value)


def set_value(out: AnyValue, value: Any) -> None:
    """`value` (an attribute value as mixerd holds it) into an OTLP AnyValue."""
    if type(value) is str:  # the common case first
        out.string_value = value
    elif isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, Timestamp):
        out.string_value = value.isoformat()
    elif isinstance(value, Duration):
        out.string_value = str(value)
    elif isinstance(value, int):
        if value in _INT64:
            out.int_value = value
        else:
            out.string_value = str(value)
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, bytes | bytearray):
        if len(value) in (4, 16):  # IP addresses are the only byte values attributes hold
            out.string_value = ip_text(bytes(value))
        else:
            out.bytes_value = bytes(value)
    elif isinstance(value, Mapping):
        entries = out.kvlist_value.values
        out.kvlist_value.SetInParent()  # an empty map is still a (empty) key-value list
        for k, v in value.items():
            if v is None:
                continue
            kv = entries.add()
            kv.key = str(k)
            set_value(kv.value, v)
    else:
        out.string_value = str(value)


def ip_text(raw: bytes) -> str:
    """An address as text; an IPv4-mapped IPv6 address in dotted form, as Mixer printed it."""
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw)  # (the common case, and 10x faster than ipaddress)
    address = ipaddress.IPv6Address(raw)
    return str(address.ipv4_mapped or address)


def export_request(items: Iterable[Item]) -> ExportTraceServiceRequest:
    """One request for `items`: a ResourceSpans per service.name, in the order they first appear."""
    by_service: dict[str, list[Span]] = {}
    for service, span in items:
        by_service.setdefault(service, []).append(span)
    request = ExportTraceServiceRequest()
    for service, spans in by_service.items():
        resource_spans = request.resource_spans.add()
        kv = resource_spans.resource.attributes.add()
        kv.key = "service.name"
        kv.value.string_value = service
        scope_spans = resource_spans.scope_spans.add()
        scope_spans.scope.name = SCOPE_NAME
        scope_spans.scope.version = __version__
        scope_spans.spans.extend(spans)
    return request


def _id(pattern: re.Pattern[str], text: str, what: str, digits: str) -> bytes:
    if not pattern.fullmatch(text):
        raise InvalidSpan(f"{what} {_shown(text)} is not {digits} hex digits")
    raw = bytes.fromhex(text)
    if not any(raw):
        raise InvalidSpan(f"{what} {_shown(text)} is all zeros")
    return raw


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")
