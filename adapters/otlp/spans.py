"""tracespan instances as OpenTelemetry SDK spans (`ReadableSpan`s), ready for the OTLP span exporter.

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

The span is an SDK `ReadableSpan` made directly, not through a Tracer: its ids, times and parent are
the proxies', not ones a tracer would choose. (The SDK says spans are normally made by its tracing
pipeline; the exporter only reads them.) The parent is a remote SpanContext: it was propagated from
another process. Everything that could stop the exporter's encoder (text UTF-8 cannot carry, integers
outside int64) is checked or converted here, on the request path, so a queued span always encodes.

Sampling keeps a trace when the low 64 bits of its id, read as a number, are below probability * 2^64:
the same decision for every span of a trace, on every replica.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import re
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from mixerd.adapter import MIXERD_VERSION, Duration, InstanceInfo, Timestamp, TraceSpanInstance, ip_text

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
# the value directly instead of asking attribute_value.
_STR, _INT, _IP = 0, 1, 2
_FIXED = tuple(
    (field, key, _IP if field in _IPS else _INT if field in _INTS else _STR)
    for field, key in FIXED_ATTRIBUTES.items()
)
_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{16}")
_SPAN_ID = re.compile(r"[0-9a-fA-F]{16}")
_INT64 = range(-(1 << 63), 1 << 63)
_ALL_TRACES = 1 << 64
_SCOPE = InstrumentationScope(SCOPE_NAME, MIXERD_VERSION)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_ERROR = Status(StatusCode.ERROR)
_UNSET = Status(StatusCode.UNSET)
#: Resources kept for this many service names (one per name, so a batch groups its spans by resource).
_RESOURCES_CACHED = 1024


class Outcome(enum.Enum):
    """Why an instance gave no span, when that is no error."""

    UNTRACED = "untraced"  # no trace or span id: the request was not traced
    SAMPLED_OUT = "sampled out"


class InvalidSpan(ValueError):
    """An instance that cannot be a span; the message says why."""


Item = ReadableSpan  # what the delivery queue holds


def derived_span_id(span_id: bytes) -> bytes:
    """The client span's id in the shared-span model: the first 8 bytes of a BLAKE2b hash of the shared
    id, so every replica derives the same one. Never all zeros."""
    derived = hashlib.blake2b(span_id, digest_size=8, person=b"mixerd-client").digest()
    return derived if any(derived) else b"\x00" * 7 + b"\x01"


def sampling_bound(probability: float) -> int:
    """Traces whose low 64 id bits are below this number are kept."""
    return _ALL_TRACES if probability >= 1 else max(0, round(probability * _ALL_TRACES))


def resource(service: str) -> Resource:
    """The resource of a service's spans: only service.name (Resource() reads no environment)."""
    # The name comes from request attributes: only short ones are remembered.
    return _cached_resource(service) if len(service) <= 256 else Resource({"service.name": service})


@functools.lru_cache(maxsize=_RESOURCES_CACHED)
def _cached_resource(service: str) -> Resource:
    return Resource({"service.name": service})


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
        trace_id = int.from_bytes(_id(_TRACE_ID, instance.trace_id, "trace id", "16 or 32"), "big")
        if self._bound < _ALL_TRACES and trace_id & (_ALL_TRACES - 1) >= self._bound:
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
        status = instance.http_status_code
        try:
            name = _text(instance.span_name)
            attributes = self._attributes(instance)
        except (ValueError, TypeError) as e:  # e.g. a string with a lone surrogate, which UTF-8 cannot carry
            raise InvalidSpan(f"a value cannot be sent: {e}") from None
        service = instance.source_name if instance.client_span else instance.destination_name
        return ReadableSpan(
            name=name,
            context=SpanContext(trace_id, int.from_bytes(span_id, "big"), False, _SAMPLED),
            parent=SpanContext(trace_id, int.from_bytes(parent, "big"), True, _SAMPLED) if parent else None,
            resource=resource(service or UNKNOWN_SERVICE),
            attributes=attributes,
            kind=SpanKind.CLIENT if instance.client_span else SpanKind.SERVER,
            status=_ERROR if status >= 500 or (instance.client_span and 400 <= status < 500) else _UNSET,
            start_time=max(0, int(instance.start_time)),
            end_time=max(0, int(instance.end_time)),
            instrumentation_scope=_SCOPE,
        )

    def _attributes(self, instance: TraceSpanInstance) -> dict[str, Any]:
        tags = instance.span_tags
        sets = self._sets.get(instance.name)
        attributes: dict[str, Any] = {}
        for field, key, kind in _FIXED:
            if key in tags:
                continue
            value = getattr(instance, field)
            if field in _SIZES:
                if (value == 0 and sets is None) or (sets is not None and field not in sets):
                    continue
            elif not value:
                continue
            if kind == _STR:
                attributes[key] = _text(value)
            elif kind == _INT:
                if value not in _INT64:
                    raise ValueError(f"{key} {value} is outside the int64 range")
                attributes[key] = value
            else:
                attributes[key] = ip_text(value)
        for key, value in tags.items():
            if value is not None:
                attributes[_text(key)] = attribute_value(value)
        return attributes


def attribute_value(value: Any) -> Any:
    """`value` (an attribute value as mixerd holds it) as a span attribute value the OTLP encoder sends
    with its type: str, bool, int (within int64), float, bytes, or a dict of those (a key-value list).
    ValueError for text UTF-8 cannot carry."""
    if type(value) is str:  # the common case first
        return _text(value)
    if isinstance(value, bool | float):
        return value
    if isinstance(value, Timestamp):
        return value.isoformat()
    if isinstance(value, Duration):
        return str(value)
    if isinstance(value, int):
        return int(value) if value in _INT64 else str(value)
    if isinstance(value, str):
        return _text(str(value))
    if isinstance(value, bytes | bytearray):
        if len(value) in (4, 16):  # IP addresses are the only byte values attributes hold
            return ip_text(bytes(value))
        return bytes(value)
    if isinstance(value, Mapping):  # an empty map is still an (empty) key-value list
        return {_text(str(k)): attribute_value(v) for k, v in value.items() if v is not None}
    return _text(str(value))


def _text(value: str) -> str:
    """`value`, once it is known UTF-8 can carry it (UnicodeEncodeError, a ValueError, if not)."""
    if not value.isascii():
        value.encode()
    return value


def _id(pattern: re.Pattern[str], text: str, what: str, digits: str) -> bytes:
    if not pattern.fullmatch(text):
        raise InvalidSpan(f"{what} {_shown(text)} is not {digits} hex digits")
    raw = bytes.fromhex(text)
    if not any(raw):
        raise InvalidSpan(f"{what} {_shown(text)} is all zeros")
    return raw


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")
