"""Envoy access-log entries (envoy.data.accesslog.v3) as Mixer report bags: the attribute mapping.

One HTTP or TCP entry becomes one dict of attributes, typed as the built-in manifest says; the stream
identifier's node describes the proxy that sends the entries (`Reporter`). docs/envoy/accesslog.md has
the whole table; the choices where Envoy and Mixer do not line up one to one:

- Direction. `context.reporter.kind` is `outbound` or `inbound` from an Istio cluster name
  (`outbound|9080||reviews.default.svc.cluster.local`), else `inbound`: a plain Envoy in front of a
  service reports as the destination side. A custom tag named `context.reporter.kind` overrides both.
- Addresses. `source.ip/port` is the downstream remote address. `destination.ip/port` is, for inbound,
  the downstream local address (the address the client reached, i.e. this workload) and, for outbound,
  the upstream remote address (the endpoint chosen), each falling back to the other; as Mixer's sidecar
  reported them. Pipe and internal addresses give no ip/port.
- The reporting proxy's identity (node id, cluster, Istio node metadata) describes the destination for
  inbound and the source for outbound; `context.reporter.uid` is its uid.
- Principals come from the downstream TLS connection: the peer certificate's first URI SAN (else DNS
  SAN) is `source.principal`, without `spiffe://` as Istio wrote it; the proxy's own certificate is
  `destination.principal` for inbound only. `connection.mtls` says the peer showed a certificate.
- Sizes. `request.size`/`response.size` are body bytes, `*.total_size` headers plus body.
  `response.duration` is the time to the last byte sent downstream (else the entry's duration), and
  `response.time` is `request.time` plus it.
- TCP bytes. Envoy reports running totals per connection; `connection.*.bytes_total` are those,
  `connection.*.bytes` the part since the previous entry of the same connection on the same stream
  (`ConnectionBytes`), so periodic entries add up to the total, as Mixer's TCP reports did.
- Custom tags (`custom_tags` in Envoy's logger config) named like a string attribute of the built-in
  manifest set that attribute, after everything else: the Envoy config's own way to fill attributes.

An entry whose content cannot be an attribute (an address that is no IP literal, a port above 65535, a
timestamp or duration out of protobuf's range, no common properties at all) raises `UnmappableEntry`;
the caller counts it and goes on with the next entry.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from ...api.envoy.config.core.v3 import base_pb2
from ...api.envoy.data.accesslog.v3 import accesslog_pb2
from ...attribute import BUILTIN_MANIFEST, ValueType
from ...attribute.values import Duration, Timestamp, parse_ip

__all__ = [
    "NO_FLAGS",
    "NO_REPORTER",
    "RESPONSE_FLAG_CODES",
    "TAGGABLE_ATTRIBUTES",
    "ClusterName",
    "ConnectionBytes",
    "Reporter",
    "UnmappableEntry",
    "http_attributes",
    "parse_cluster_name",
    "reporter_from_node",
    "response_flags_text",
    "tcp_attributes",
]


class UnmappableEntry(ValueError):
    """An entry that cannot become a bag; the message names the field and the value."""


# -- response flags ---------------------------------------------------------------------------------

#: Envoy's short text of each ResponseFlags field (the %RESPONSE_FLAGS% vocabulary Istio's
#: response_flags label uses), by field number. Envoy prints them in this order, joined by ",".
RESPONSE_FLAG_CODES: Mapping[int, str] = {
    1: "LH",  # failed_local_healthcheck
    2: "UH",  # no_healthy_upstream
    3: "UT",  # upstream_request_timeout
    4: "LR",  # local_reset
    5: "UR",  # upstream_remote_reset
    6: "UF",  # upstream_connection_failure
    7: "UC",  # upstream_connection_termination
    8: "UO",  # upstream_overflow
    9: "NR",  # no_route_found
    10: "DI",  # delay_injected
    11: "FI",  # fault_injected
    12: "RL",  # rate_limited
    13: "UAEX",  # unauthorized_details (reason EXTERNAL_SERVICE)
    14: "RLSE",  # rate_limit_service_error
    15: "DC",  # downstream_connection_termination
    16: "URX",  # upstream_retry_limit_exceeded
    17: "SI",  # stream_idle_timeout
    18: "IH",  # invalid_envoy_request_headers
    19: "DPE",  # downstream_protocol_error
    20: "UMSDR",  # upstream_max_stream_duration_reached
    21: "RFCF",  # response_from_cache_filter
    22: "NFCF",  # no_filter_config_found
    23: "DT",  # duration_timeout
    24: "UPE",  # upstream_protocol_error
    25: "NC",  # no_cluster_found
    26: "OM",  # overload_manager
    27: "DF",  # dns_resolution_failure
    28: "DRR",  # downstream_remote_reset
}

#: What Envoy prints when no flag is set; Istio's rules default to it too.
NO_FLAGS = "-"


def response_flags_text(flags: accesslog_pb2.ResponseFlags) -> str:
    """Envoy's short text for the flags set (`UH,UT`), `-` for none; unknown (newer) flags are left out."""
    # ListFields gives the set fields in field-number order: Envoy's own order.
    codes = [RESPONSE_FLAG_CODES.get(f.number) for f, value in flags.ListFields() if value]
    return ",".join(c for c in codes if c) or NO_FLAGS


# -- cluster names ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClusterName:
    """What an upstream cluster name says: Istio's direction (or None) and the service attributes."""

    direction: str | None
    service: tuple[tuple[str, str], ...]


def parse_cluster_name(name: str) -> ClusterName:
    """`_parse_cluster_name`, remembered for names of up to 256 characters (Envoy sends them; a cache
    of 4096 must not keep megabyte-long ones)."""
    return _cached_cluster_name(name) if len(name) <= 256 else _parse_cluster_name(name)


def _parse_cluster_name(name: str) -> ClusterName:
    """Istio's `direction|port|subset|host` (also the SNI form `outbound_.9080_.v1_.host`), or any name.

    An Istio name gives `destination.service.host` = host, and for a Kubernetes service host
    (`name.namespace.svc...`) also `.name`, `.namespace` and `.uid` (`istio://namespace/services/name`).
    Any other name is the service host and name as it is. An Istio name without a host (newer inbound
    clusters, `inbound|9080||`) gives no service attributes.
    """
    direction, host = _istio_cluster(name)
    if direction is None:
        return ClusterName(None, (("destination.service.host", name), ("destination.service.name", name)))
    if not host:
        return ClusterName(direction, ())
    service = [("destination.service.host", host)]
    labels = host.split(".")
    if len(labels) >= 3 and labels[2] == "svc":
        service += [
            ("destination.service.name", labels[0]),
            ("destination.service.namespace", labels[1]),
            ("destination.service.uid", f"istio://{labels[1]}/services/{labels[0]}"),
        ]
    else:
        service.append(("destination.service.name", host))
    return ClusterName(direction, tuple(service))


_cached_cluster_name = lru_cache(maxsize=4096)(_parse_cluster_name)


_DIRECTIONS = ("outbound", "inbound")


def _istio_cluster(name: str) -> tuple[str | None, str]:
    parts = name.split("|")
    if len(parts) == 4 and parts[0] in _DIRECTIONS and parts[1].isdigit():
        return parts[0], parts[3]
    parts = name.split("_.", 3)
    if len(parts) == 4 and parts[0] in _DIRECTIONS and parts[1].isdigit():
        return parts[0], parts[3]
    return None, ""


# -- the reporting proxy ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reporter:
    """The proxy that sends a stream's entries, as attributes for either side it may play."""

    uid: str | None = None
    as_destination: Mapping[str, Any] = field(default_factory=dict)  # inbound: the proxy is the destination
    as_source: Mapping[str, Any] = field(default_factory=dict)  # outbound: the proxy is the source
    proxy_version: str | None = None


NO_REPORTER = Reporter()


def reporter_from_node(node: base_pb2.Node) -> Reporter:
    """The reporting proxy from the stream identifier's node.

    - id: Istio's `type~ip~pod.namespace~domain` gives uid `kubernetes://pod.namespace`, the pod name and
      namespace; any other id is the uid as it is.
    - cluster: the workload name; Istio's `name.namespace` form loses its `.namespace` suffix.
    - metadata (Istio's node metadata keys): NAME (pod), NAMESPACE, WORKLOAD_NAME, LABELS (a struct of
      strings), ISTIO_VERSION; each wins over what id and cluster say.
    """
    pod, namespace, uid = _from_node_id(node.id)
    workload: str | None = node.cluster or None
    labels: dict[str, str] | None = None
    version: str | None = None
    meta = node.metadata.fields if node.HasField("metadata") else {}
    if meta:
        pod = _meta_string(meta, "NAME") or pod
        namespace = _meta_string(meta, "NAMESPACE") or namespace
        workload = _meta_string(meta, "WORKLOAD_NAME") or _strip_namespace(workload, namespace)
        version = _meta_string(meta, "ISTIO_VERSION")
        if "LABELS" in meta and meta["LABELS"].HasField("struct_value"):
            labels = {
                k: v.string_value
                for k, v in meta["LABELS"].struct_value.fields.items()
                if v.WhichOneof("kind") == "string_value"
            }
    else:
        workload = _strip_namespace(workload, namespace)

    def side(prefix: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if uid:
            values[prefix + ".uid"] = uid
        if pod:
            values[prefix + ".name"] = pod
        if namespace:
            values[prefix + ".namespace"] = namespace
        if workload:
            values[prefix + ".workload.name"] = workload
            if namespace:
                values[prefix + ".workload.namespace"] = namespace
                values[prefix + ".workload.uid"] = f"istio://{namespace}/workloads/{workload}"
        if labels is not None:
            values[prefix + ".labels"] = labels
        return values

    return Reporter(uid or None, side("destination"), side("source"), version)


def _from_node_id(node_id: str) -> tuple[str | None, str | None, str | None]:
    """(pod, namespace, uid) from a node id."""
    parts = node_id.split("~")
    if len(parts) == 4 and parts[2].count(".") == 1:
        pod, namespace = parts[2].split(".")
        if pod and namespace:
            return pod, namespace, f"kubernetes://{pod}.{namespace}"
    return None, None, node_id or None


def _strip_namespace(workload: str | None, namespace: str | None) -> str | None:
    if workload and namespace and workload.endswith("." + namespace):
        return workload[: -len(namespace) - 1] or None
    return workload


def _meta_string(meta: Any, key: str) -> str | None:
    value = meta.get(key)
    if value is not None and value.WhichOneof("kind") == "string_value":
        return value.string_value or None
    return None


# -- TCP byte counts --------------------------------------------------------------------------------


class ConnectionBytes:
    """Running byte totals per open connection of one stream, to turn Envoy's totals into increments.

    Keyed by the entry's stream_id; a connection's last entry (TcpConnectionEnd) forgets it. At most
    `limit` connections are remembered: past that the oldest is forgotten, and a later entry of it
    counts its bytes from zero again (an over-count Envoy's own loss of entries makes likely anyway).
    An id longer than 128 characters is remembered by its (per-process salted) hash, so that memory
    stays about 300 bytes per connection whatever the ids are.
    """

    __slots__ = ("_seen", "limit")

    def __init__(self, limit: int = 65536) -> None:
        self._seen: OrderedDict[str | int, tuple[int, int]] = OrderedDict()
        self.limit = limit

    def __len__(self) -> int:
        return len(self._seen)

    def increments(self, connection: str, received: int, sent: int, last: bool) -> tuple[int, int]:
        """The bytes received and sent since the connection's previous entry (all of them if none)."""
        if not connection:
            return received, sent
        key: str | int = connection if len(connection) <= 128 else hash(connection)
        seen = self._seen
        before = seen.pop(key, None) if last else seen.get(key)
        if not last:
            seen[key] = (received, sent)
            seen.move_to_end(key)
            if len(seen) > self.limit:
                seen.popitem(last=False)
        if before is None:
            return received, sent
        # Totals never shrink; if they do (a reused id), count the new total whole.
        drx, dtx = received - before[0], sent - before[1]
        return (drx if drx >= 0 else received), (dtx if dtx >= 0 else sent)


# -- the mapping ------------------------------------------------------------------------------------

_INBOUND, _OUTBOUND = "inbound", "outbound"
_METHODS: Mapping[int, str] = {
    v.number: v.name for v in base_pb2.RequestMethod.DESCRIPTOR.values if v.number != 0
}
_LogType = accesslog_pb2.AccessLogType
_OPEN_TYPES = frozenset({_LogType.TcpUpstreamConnected})
_CLOSE_TYPES = frozenset({_LogType.TcpConnectionEnd})
_STRING_TYPES = {ValueType.STRING, ValueType.DNS_NAME, ValueType.EMAIL_ADDRESS, ValueType.URI}
#: Custom tags that name one of these attributes set it.
TAGGABLE_ATTRIBUTES = frozenset(name for name, t in BUILTIN_MANIFEST.items() if t in _STRING_TYPES)

# Timestamp's valid range (0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z) and Duration's (+-10000 years).
_MIN_SECONDS, _MAX_SECONDS = -62135596800, 253402300799
_MAX_DURATION_SECONDS = 315576000000
_NS = 1_000_000_000


def http_attributes(entry: accesslog_pb2.HTTPAccessLogEntry, reporter: Reporter) -> dict[str, Any]:
    """The report bag of one HTTP entry (see the module docstring and docs/envoy/accesslog.md)."""
    if not entry.HasField("common_properties"):
        raise UnmappableEntry("HTTP entry without common_properties")
    common = entry.common_properties
    values: dict[str, Any] = {}
    _common(common, reporter, values)
    start = values.get("request.time")

    request = entry.request
    headers: dict[str, str] = {}
    method = _METHODS.get(request.request_method)
    if method is not None:
        values["request.method"] = headers[":method"] = method
    # Each field read from a protobuf message costs a lookup: read once, then test.
    value = request.scheme
    if value:
        values["request.scheme"] = headers[":scheme"] = value
    value = request.authority
    if value:
        values["request.host"] = headers[":authority"] = value
    path = request.path
    if path:
        values["request.path"] = headers[":path"] = path
        url_path, question, query = path.partition("?")
        values["request.url_path"] = url_path
        if question:
            values["request.query_params"] = dict(reversed(parse_qsl(query, keep_blank_values=True)))
    value = request.user_agent
    if value:
        values["request.useragent"] = headers["user-agent"] = value
    value = request.referer
    if value:
        values["request.referer"] = headers["referer"] = value
    value = request.request_id
    if value:
        values["request.id"] = headers["x-request-id"] = value
    value = request.forwarded_for
    if value:
        headers["x-forwarded-for"] = value
    value = request.original_path
    if value:
        headers["x-envoy-original-path"] = value
    _copy_map(request.request_headers, headers)
    values["request.headers"] = headers
    body = request.request_body_bytes
    values["request.size"] = body
    values["request.total_size"] = body + request.request_headers_bytes

    response = entry.response
    if response.HasField("response_code"):
        values["response.code"] = response.response_code.value
    body = response.response_body_bytes
    values["response.size"] = body
    values["response.total_size"] = body + response.response_headers_bytes
    response_headers: dict[str, str] = {}
    _copy_map(response.response_headers, response_headers)
    _copy_map(response.response_trailers, response_headers)
    values["response.headers"] = response_headers
    grpc_status = response_headers.get("grpc-status")
    if grpc_status is not None:
        values["response.grpc_status"] = grpc_status
        message = response_headers.get("grpc-message")
        if message is not None:
            values["response.grpc_message"] = message
    grpc = headers.get("content-type", "").startswith("application/grpc") or grpc_status is not None
    values["context.protocol"] = "grpc" if grpc else "http"

    if common.HasField("time_to_last_downstream_tx_byte"):
        took = _duration(common.time_to_last_downstream_tx_byte, "time_to_last_downstream_tx_byte")
    elif common.HasField("duration"):
        took = _duration(common.duration, "duration")
    else:
        took = None
    if took is not None:
        values["response.duration"] = took
        if start is not None:
            values["response.time"] = Timestamp(start + took)

    _apply_tags(common, values)
    return values


def tcp_attributes(
    entry: accesslog_pb2.TCPAccessLogEntry, reporter: Reporter, connections: ConnectionBytes | None = None
) -> dict[str, Any]:
    """The report bag of one TCP entry; `connections` turns byte totals into increments (else whole)."""
    if not entry.HasField("common_properties"):
        raise UnmappableEntry("TCP entry without common_properties")
    common = entry.common_properties
    values: dict[str, Any] = {}
    _common(common, reporter, values)
    values["context.protocol"] = "tcp"

    log_type = common.access_log_type
    if log_type in _OPEN_TYPES:
        event = "open"
    elif log_type in _CLOSE_TYPES or (log_type == _LogType.NotSet and not common.intermediate_log_entry):
        event = "close"
    else:
        event = "continue"
    values["connection.event"] = event
    if common.stream_id:
        values["connection.id"] = common.stream_id

    props = entry.connection_properties
    received, sent = props.received_bytes, props.sent_bytes
    values["connection.received.bytes_total"] = received
    values["connection.sent.bytes_total"] = sent
    if connections is not None:
        received, sent = connections.increments(common.stream_id, received, sent, event == "close")
    values["connection.received.bytes"] = received
    values["connection.sent.bytes"] = sent
    if common.HasField("duration"):
        values["connection.duration"] = _duration(common.duration, "duration")

    _apply_tags(common, values)
    return values


def _common(common: accesslog_pb2.AccessLogCommon, reporter: Reporter, values: dict[str, Any]) -> None:
    """What HTTP and TCP entries share: direction, addresses, service, TLS, flags, time, reporter."""
    cluster = parse_cluster_name(common.upstream_cluster) if common.upstream_cluster else None
    kind = common.custom_tags.get("context.reporter.kind") if common.custom_tags else None
    if kind is None:
        kind = cluster.direction if cluster is not None and cluster.direction is not None else _INBOUND
    values["context.reporter.kind"] = kind
    outbound = kind == _OUTBOUND
    if reporter.uid is not None:
        values["context.reporter.uid"] = reporter.uid
    values.update(reporter.as_source if outbound else reporter.as_destination)
    if reporter.proxy_version is not None:
        values["context.proxy_version"] = reporter.proxy_version

    _address(common, "downstream_remote_address", "source", values)
    first, second = (
        ("upstream_remote_address", "downstream_local_address")
        if outbound
        else ("downstream_local_address", "upstream_remote_address")
    )
    if not _address(common, first, "destination", values):
        _address(common, second, "destination", values)

    if cluster is not None:
        values.update(cluster.service)

    if common.HasField("tls_properties"):
        tls = common.tls_properties
        if tls.tls_sni_hostname:
            values["connection.requested_server_name"] = tls.tls_sni_hostname
        peer = _principal(tls, "peer_certificate_properties")
        if peer is not None:
            values["source.principal"] = peer
        if not outbound:  # the proxy's own certificate names the destination only when it is one
            local = _principal(tls, "local_certificate_properties")
            if local is not None:
                values["destination.principal"] = local
        values["connection.mtls"] = tls.HasField("peer_certificate_properties") and bool(
            tls.peer_certificate_properties.subject_alt_name or tls.peer_certificate_properties.subject
        )
    else:
        values["connection.mtls"] = False

    values["context.proxy_error_code"] = (
        response_flags_text(common.response_flags) if common.HasField("response_flags") else NO_FLAGS
    )
    if common.HasField("start_time"):
        ts = common.start_time
        if not (_MIN_SECONDS <= ts.seconds <= _MAX_SECONDS and 0 <= ts.nanos < _NS):
            raise UnmappableEntry(f"start_time {ts.seconds}s {ts.nanos}ns is out of range")
        values["request.time"] = Timestamp(ts.seconds * _NS + ts.nanos)


def _address(common: accesslog_pb2.AccessLogCommon, name: str, side: str, values: dict[str, Any]) -> bool:
    """Set `<side>.ip` and `<side>.port` from a socket address; False when there is none."""
    if not common.HasField(name):
        return False
    address = getattr(common, name)
    if not address.HasField("socket_address"):
        return False  # a pipe or an internal address: nothing to say as ip and port
    sock = address.socket_address
    values[side + ".ip"] = _ip(sock.address, name)
    if sock.port_value:
        if sock.port_value > 65535:
            raise UnmappableEntry(f"{name}: port {sock.port_value} is out of range")
        values[side + ".port"] = sock.port_value
    return True


def _ip(text: str, where: str) -> bytes:
    packed = parse_ip(text)  # no zone in the packed form
    if packed is None:
        raise UnmappableEntry(f"{where}: {text!r} is not an IP address")
    return packed


def _principal(tls: accesslog_pb2.TLSProperties, name: str) -> str | None:
    """The first URI SAN (without `spiffe://`, as Istio wrote principals), else the first DNS SAN."""
    if not tls.HasField(name):
        return None
    sans = getattr(tls, name).subject_alt_name
    for san in sans:
        if san.uri:
            return san.uri.removeprefix("spiffe://")
    for san in sans:
        if san.dns:
            return san.dns
    return None


def _duration(value: Any, name: str) -> Duration:
    seconds, nanos = value.seconds, value.nanos
    if not (0 <= seconds <= _MAX_DURATION_SECONDS and 0 <= nanos < _NS):
        raise UnmappableEntry(f"{name} {seconds}s {nanos}ns is negative or out of range")
    return Duration(seconds * _NS + nanos)


def _copy_map(source: Any, target: dict[str, str]) -> None:
    """Copy a protobuf string map; iterating its keys is several times faster than dict.update on it."""
    if source:
        for key in source:
            target[key] = source[key]


def _apply_tags(common: accesslog_pb2.AccessLogCommon, values: dict[str, Any]) -> None:
    tags = common.custom_tags
    if tags:
        for tag, value in tags.items():
            if tag in TAGGABLE_ATTRIBUTES:
                values[tag] = value
