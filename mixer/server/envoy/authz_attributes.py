"""Envoy's ext_authz AttributeContext as a Mixer attribute bag (docs/envoy/authz.md has the table).

`AttributeView(context)` checks the fields that can be wrong and then gives each attribute when asked
for (`get`, `has`, `map_value`), so the verdict cache can key a request on the few attributes the rules
read without building the whole bag; `values()` (or `attributes_of(context)`) is the whole bag as a dict
(name -> value, typed as mixerd.attribute.values describes) for the Check dispatch. Both come from the
one table of extractors below, so they cannot disagree.

The names are Istio's vocabulary (mixer/attribute/builtin_manifest.yaml); two come from Envoy and are
declared there: `request.protocol` and `context.extensions`. What the bag always holds, so rules behave
as they did behind Istio's proxies:
- `context.reporter.kind` is "inbound": Mixer's policy checks came from the server-side sidecar, and an
  ext_authz filter likewise guards the service behind it;
- `context.protocol` is "grpc" for a request whose content-type is application/grpc, "http" for other
  HTTP requests and "tcp" when there is no HTTP request (the network ext_authz filter);
- `connection.mtls` says whether the peer presented a certificate (it has a principal or certificate);
- `context.extensions` is present even when empty, and so is `request.headers` when there is an HTTP
  request, so `request.headers["x"]` reads "" for a missing header instead of failing.

Everything else is present only when Envoy sent it (an empty string, or a size of -1, is "not sent").
`BadAttributes` (answered with INVALID_ARGUMENT) names the field path of a value that cannot be mapped:
an address that is not an IP, a port above 65535, a timestamp out of range.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...api.envoy.service.auth.v3 import attribute_context_pb2
from ...attribute import Timestamp
from ...attribute.values import parse_ip

AttributeContext = attribute_context_pb2.AttributeContext

#: What `context.reporter.kind` says (see the module docstring).
REPORTER_KIND = "inbound"

_MAX_PORT = 65535
_NANOS = 1_000_000_000
_SPIFFE = "spiffe://"
_HEADERS = "request.headers"
_EXTENSIONS = "context.extensions"


class BadAttributes(ValueError):
    """A field of the AttributeContext that cannot become an attribute; the message names its path."""


def ip_bytes(text: str, path: str) -> bytes:
    """An IP address in text as Mixer's IP_ADDRESS value: 4 or 16 raw bytes. BadAttributes, naming the
    field `path`, otherwise."""
    packed = parse_ip(text)
    if packed is None:
        raise BadAttributes(f"{path}: {text!r} is not an IP address")
    return packed


def namespace_of(principal: str) -> str | None:
    """The namespace in an Istio identity, `spiffe://<trust domain>/ns/<namespace>/sa/<account>` (also
    without the `spiffe://` scheme, as Mixer-era proxies wrote it); None for any other form."""
    parts = principal.removeprefix(_SPIFFE).split("/")
    if len(parts) == 5 and parts[1] == "ns" and parts[3] == "sa" and parts[2]:
        return parts[2]
    return None


def split_path(path: str) -> tuple[str, dict[str, str]]:
    """A request target as (path without the query, query parameters).

    Parameters are split on `&` and `=`, kept as sent (not percent-decoded, as Istio's proxy did), and
    the first of a repeated name wins; a name without `=` has the value "". A fragment is dropped.
    """
    path = path.partition("#")[0]
    url_path, sep, query = path.partition("?")
    params: dict[str, str] = {}
    if sep and query:
        for pair in query.split("&"):
            if not pair:
                continue
            name, _, value = pair.partition("=")
            params.setdefault(name, value)
    return url_path, params


def _address(peer: Any, path: str) -> tuple[bytes | None, int | None]:
    """A peer's (IP bytes, port), both None without a socket address; BadAttributes when invalid."""
    socket_address = peer.address.socket_address  # unset (a pipe, say): its address reads ""
    text = socket_address.address
    if not text:
        return None, None
    ip = ip_bytes(text, f"{path}.address.socket_address.address")
    port = socket_address.port_value
    if port > _MAX_PORT:
        raise BadAttributes(f"{path}.address.socket_address.port_value: {port} is above {_MAX_PORT}")
    return ip, port


def _merged_headers(http: Any) -> dict[str, str]:
    """`encode_raw_headers`: a list of (key, raw bytes), merged the way Envoy merges its plain map."""
    merged: dict[str, str] = {}
    for header in http.header_map.headers:
        key = header.key.lower()
        value = header.raw_value.decode("utf-8", "replace") if header.raw_value else header.value
        merged[key] = merged[key] + "," + value if key in merged else value
    return merged


class AttributeView:
    """The attributes of one AttributeContext, each computed when asked for (see the module docstring)."""

    __slots__ = (
        "_headers",
        "_path_parts",
        "context",
        "destination_ip",
        "destination_port",
        "http",
        "source_ip",
        "source_port",
    )

    def __init__(self, context: Any) -> None:
        """Check the fields that can be invalid; BadAttributes names the first one that is."""
        self.context = context
        self.source_ip, self.source_port = _address(context.source, "attributes.source")
        self.destination_ip, self.destination_port = _address(context.destination, "attributes.destination")
        request = context.request
        nanos = request.time.nanos  # 0 when there is no time
        if not 0 <= nanos < _NANOS:
            raise BadAttributes(f"attributes.request.time.nanos: {nanos} is outside 0..999999999")
        self.http = request.http if request.HasField("http") else None
        self._headers: dict[str, str] | None = None
        self._path_parts: tuple[str, dict[str, str]] | None = None

    def get(self, name: str) -> Any | None:
        """The value of attribute `name`, or None when the request does not have it."""
        extract = _EXTRACTORS.get(name)
        return None if extract is None else extract(self)

    def has(self, name: str) -> bool:
        if name not in _EXTRACTORS:  # rules often test attributes Envoy never sends
            return False
        if name == _HEADERS:
            return self.http is not None
        if name == _EXTENSIONS:
            return True
        return self.get(name) is not None

    def map_value(self, name: str, key: str) -> str | None:
        """`get(name)[key]`, or None when the map or the key is absent."""
        # The maps rules index most, read in place rather than copied.
        if name == _HEADERS:
            return self.header(key)
        if name == _EXTENSIONS:
            value: str | None = self.context.context_extensions.get(key)
            return value
        mapping = self.get(name)
        return None if mapping is None else mapping.get(key)

    def values(self) -> dict[str, Any]:
        """Every attribute the request has: the bag."""
        out = {}
        for name, extract in _EXTRACTORS.items():
            value = extract(self)
            if value is not None:
                out[name] = value
        return out

    # -- shared parts ------------------------------------------------------------------------------

    def headers(self) -> dict[str, str] | None:
        http = self.http
        if http is None:
            return None
        if self._headers is None:
            self._headers = dict(http.headers) if http.headers else _merged_headers(http)
        return self._headers

    def header(self, key: str) -> str | None:
        http = self.http
        if http is None:
            return None
        headers = self._headers
        if headers is None:
            if http.headers:  # straight from Envoy's map, without copying it
                value: str | None = http.headers.get(key)
                return value
            headers = self.headers()
        return headers.get(key)  # type: ignore[union-attr]

    def path_parts(self) -> tuple[str, dict[str, str]] | None:
        http = self.http
        if http is None or not http.path:
            return None
        if self._path_parts is None:
            self._path_parts = split_path(http.path)
        return self._path_parts


def _string(value: str) -> str | None:
    return value or None


def _principal(peer: Any) -> str | None:
    return peer.principal or None


def _namespace(peer: Any) -> str | None:
    return namespace_of(peer.principal) if peer.principal else None


def _labels(peer: Any) -> dict[str, str] | None:
    return dict(peer.labels) if peer.labels else None


def _http_field(field: str) -> Callable[[AttributeView], str | None]:
    def extract(view: AttributeView) -> str | None:
        http = view.http
        return None if http is None else getattr(http, field) or None

    return extract


def _header_value(key: str) -> Callable[[AttributeView], str | None]:
    def extract(view: AttributeView) -> str | None:
        return view.header(key) or None

    return extract


def _request_id(view: AttributeView) -> str | None:
    # Istio's request.id is the x-request-id header; Envoy's http.id is its own stream id, the fallback.
    http = view.http
    if http is None:
        return None
    return view.header("x-request-id") or http.id or None


def _size(view: AttributeView) -> int | None:
    http = view.http
    if http is None or http.size < 0:  # -1: unknown
        return None
    return int(http.size)


def _url_path(view: AttributeView) -> str | None:
    parts = view.path_parts()
    return None if parts is None else parts[0]


def _query_params(view: AttributeView) -> dict[str, str] | None:
    parts = view.path_parts()
    return None if parts is None else dict(parts[1])


def _time(view: AttributeView) -> Timestamp | None:
    request = view.context.request
    if not request.HasField("time"):
        return None
    time = request.time
    return Timestamp(time.seconds * _NANOS + time.nanos)


def _extensions(view: AttributeView) -> dict[str, str]:
    extensions = view.context.context_extensions
    return dict(extensions) if extensions else {}


def _context_protocol(view: AttributeView) -> str:
    if view.http is None:
        return "tcp"
    content_type = view.header("content-type") or ""
    return "grpc" if content_type.startswith("application/grpc") else "http"


def _mtls(view: AttributeView) -> bool:
    source = view.context.source
    return bool(source.principal or source.certificate)


#: Attribute name -> how to read it from the view (None: the request does not have it).
_EXTRACTORS: dict[str, Callable[[AttributeView], Any]] = {
    "source.ip": lambda v: v.source_ip,
    "source.port": lambda v: v.source_port,
    "source.principal": lambda v: _principal(v.context.source),
    "source.user": lambda v: _principal(v.context.source),  # Mixer's older name for the same identity
    "source.namespace": lambda v: _namespace(v.context.source),
    "source.labels": lambda v: _labels(v.context.source),
    "destination.ip": lambda v: v.destination_ip,
    "destination.port": lambda v: v.destination_port,
    "destination.principal": lambda v: _principal(v.context.destination),
    "destination.namespace": lambda v: _namespace(v.context.destination),
    "destination.labels": lambda v: _labels(v.context.destination),
    "connection.mtls": _mtls,
    "connection.requested_server_name": lambda v: _string(v.context.tls_session.sni),
    "request.time": _time,
    _HEADERS: AttributeView.headers,
    "request.id": _request_id,
    "request.method": _http_field("method"),
    "request.path": _http_field("path"),
    "request.url_path": _url_path,
    "request.query_params": _query_params,
    "request.host": _http_field("host"),
    "request.scheme": _http_field("scheme"),
    "request.size": _size,
    "request.protocol": _http_field("protocol"),
    "request.useragent": _header_value("user-agent"),
    "request.referer": _header_value("referer"),
    "context.protocol": _context_protocol,
    "context.reporter.kind": lambda v: REPORTER_KIND,
    _EXTENSIONS: _extensions,
}

#: Every attribute an ext_authz request can have.
ATTRIBUTE_NAMES: tuple[str, ...] = tuple(_EXTRACTORS)


def attributes_of(context: Any) -> dict[str, Any]:
    """The attribute values of one ext_authz AttributeContext (see the module docstring)."""
    return AttributeView(context).values()
