"""Envoy access-log entries become the report bags docs/envoy/accesslog.md describes, field by field."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import text_format

from mixerd.api.envoy.config.core.v3 import address_pb2, base_pb2
from mixerd.api.envoy.data.accesslog.v3 import accesslog_pb2
from mixerd.api.envoy.service.accesslog.v3 import als_pb2
from mixerd.attribute import BUILTIN_MANIFEST, Duration, Timestamp, ValueType
from mixerd.server.envoy.accesslog_attributes import (
    NO_REPORTER,
    RESPONSE_FLAG_CODES,
    ConnectionBytes,
    Reporter,
    UnmappableEntry,
    http_attributes,
    parse_cluster_name,
    reporter_from_node,
    response_flags_text,
    tcp_attributes,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "envoy" / "accesslog"
Identifier = als_pb2.StreamAccessLogsMessage.Identifier
TcpEntries = als_pb2.StreamAccessLogsMessage.TCPAccessLogEntries


def _load(name: str, message: Any) -> Any:
    return text_format.Parse((DATA / name).read_text(), message)


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


@pytest.fixture
def reporter() -> Reporter:
    return reporter_from_node(_load("identifier.textproto", Identifier()).node)


def http_entry(**common: Any) -> accesslog_pb2.HTTPAccessLogEntry:
    """An HTTP entry with only the given common properties (as keyword fields)."""
    return accesslog_pb2.HTTPAccessLogEntry(common_properties=accesslog_pb2.AccessLogCommon(**common))


def address(host: str, port: int = 0) -> Any:
    return address_pb2.Address(socket_address=address_pb2.SocketAddress(address=host, port_value=port))


START = Timestamp(1795221050 * 1_000_000_000 + 345213000)
SOURCE_WORKLOAD = {
    "source.uid": "kubernetes://productpage-v1-6b746f74dc-9stvs.default",
    "source.name": "productpage-v1-6b746f74dc-9stvs",
    "source.namespace": "default",
    "source.workload.name": "productpage",
    "source.workload.namespace": "default",
    "source.workload.uid": "istio://default/workloads/productpage",
    "source.labels": {"app": "productpage", "version": "v1"},
}


# -- the whole mapping ------------------------------------------------------------------------------


def test_an_http_entry_with_every_field_becomes_this_bag(reporter: Reporter) -> None:
    entry = _load("http_outbound.textproto", accesslog_pb2.HTTPAccessLogEntry())
    took = Duration(1_004_210_000)  # time_to_last_downstream_tx_byte, not duration
    assert http_attributes(entry, reporter) == {
        # the reporting proxy is the source: the cluster name says outbound
        "context.reporter.kind": "outbound",
        "context.reporter.uid": "kubernetes://productpage-v1-6b746f74dc-9stvs.default",
        "context.proxy_version": "1.4.10",
        **SOURCE_WORKLOAD,
        "source.ip": ip("10.44.0.12"),
        "source.port": 51234,
        # outbound: the upstream endpoint, not the address the app dialled
        "destination.ip": ip("10.44.0.17"),
        "destination.port": 9080,
        "destination.service.host": "reviews.default.svc.cluster.local",
        "destination.service.name": "reviews",
        "destination.service.namespace": "default",
        "destination.service.uid": "istio://default/services/reviews",
        "connection.requested_server_name": "outbound_.9080_._.reviews.default.svc.cluster.local",
        "source.principal": "cluster.local/ns/default/sa/sleep",  # a URI SAN before a DNS one
        "connection.mtls": True,
        "context.proxy_error_code": "UT,URX",
        "context.protocol": "http",
        "request.time": START,
        "request.method": "POST",
        "request.scheme": "https",
        "request.host": "reviews:9080",
        "request.path": "/reviews/0?page=2&sort=asc&page=3",
        "request.url_path": "/reviews/0",
        "request.query_params": {"page": "2", "sort": "asc"},
        "request.useragent": "python-requests/2.31.0",
        "request.referer": "https://productpage/",
        "request.id": "282d1877-ed13-4cdd-9d3c-34c73b1113fd",
        "request.headers": {
            ":method": "POST",
            ":scheme": "https",
            ":authority": "reviews:9080",
            ":path": "/reviews/0?page=2&sort=asc&page=3",
            "user-agent": "python-requests/2.31.0",
            "referer": "https://productpage/",
            "x-request-id": "282d1877-ed13-4cdd-9d3c-34c73b1113fd",
            "x-forwarded-for": "192.0.2.7",
            "x-envoy-original-path": "/api/reviews/0",
            "content-type": "application/json",
            "x-user": "jason",
        },
        "request.size": 1024,
        "request.total_size": 1024 + 255,
        "response.code": 504,
        "response.size": 24,
        "response.total_size": 24 + 119,
        "response.headers": {"content-type": "text/plain", "x-trailer": "done"},
        "response.duration": took,
        "response.time": Timestamp(START + took),
    }


def test_tcp_entries_of_one_connection_become_open_continue_close_with_byte_increments(
    reporter: Reporter,
) -> None:
    entries = _load("tcp_connection.textproto", TcpEntries()).log_entry
    connections = ConnectionBytes()
    opened, periodic, closed = (tcp_attributes(e, reporter, connections) for e in entries)
    common = {
        "context.reporter.kind": "outbound",
        "context.reporter.uid": "kubernetes://productpage-v1-6b746f74dc-9stvs.default",
        "context.proxy_version": "1.4.10",
        **SOURCE_WORKLOAD,
        "source.ip": ip("10.44.0.12"),
        "source.port": 46116,
        "destination.ip": ip("10.44.0.30"),
        "destination.port": 27017,
        "destination.service.host": "mongodb.default.svc.cluster.local",
        "destination.service.name": "mongodb",
        "destination.service.namespace": "default",
        "destination.service.uid": "istio://default/services/mongodb",
        "connection.mtls": False,
        "context.proxy_error_code": "-",
        "context.protocol": "tcp",
        "request.time": Timestamp(1795221040 * 1_000_000_000 + 954643000),
        "connection.id": "096a4a21-5760-4198-be69-cb5fc308e0f6",
    }

    def counts(event: str, received: int, sent: int, received_total: int, sent_total: int) -> dict[str, Any]:
        return {
            **common,
            "connection.event": event,
            "connection.received.bytes": received,
            "connection.sent.bytes": sent,
            "connection.received.bytes_total": received_total,
            "connection.sent.bytes_total": sent_total,
        }

    assert opened == counts("open", 0, 0, 0, 0)
    assert periodic == counts("continue", 300, 1200, 300, 1200)
    assert closed == {**counts("close", 500, 300, 800, 1500), "connection.duration": Duration(501218124)}
    assert len(connections) == 0  # the end of the connection forgot it


@pytest.mark.parametrize("name", ["http", "tcp"])
def test_every_attribute_made_is_in_the_builtin_manifest_with_its_type(name: str, reporter: Reporter) -> None:
    if name == "http":
        bag = http_attributes(_load("http_outbound.textproto", accesslog_pb2.HTTPAccessLogEntry()), reporter)
    else:
        bag = tcp_attributes(_load("tcp_connection.textproto", TcpEntries()).log_entry[2], reporter)
    python_types = {
        ValueType.STRING: str,
        ValueType.INT64: int,
        ValueType.BOOL: bool,
        ValueType.TIMESTAMP: Timestamp,
        ValueType.DURATION: Duration,
        ValueType.IP_ADDRESS: bytes,
        ValueType.STRING_MAP: dict,
    }
    for attribute, value in bag.items():
        assert attribute in BUILTIN_MANIFEST, attribute
        assert type(value) is python_types[BUILTIN_MANIFEST[attribute]], attribute


# -- missing fields ---------------------------------------------------------------------------------


def test_an_http_entry_with_empty_common_properties_gives_only_the_always_present_attributes() -> None:
    assert http_attributes(http_entry(), NO_REPORTER) == {
        "context.reporter.kind": "inbound",
        "connection.mtls": False,
        "context.proxy_error_code": "-",
        "context.protocol": "http",
        "request.headers": {},
        "request.size": 0,
        "request.total_size": 0,
        "response.size": 0,
        "response.total_size": 0,
        "response.headers": {},
    }


def test_a_tcp_entry_with_empty_common_properties_is_a_whole_closed_connection() -> None:
    entry = accesslog_pb2.TCPAccessLogEntry(
        common_properties=accesslog_pb2.AccessLogCommon(),
        connection_properties=accesslog_pb2.ConnectionProperties(received_bytes=7, sent_bytes=9),
    )
    assert tcp_attributes(entry, NO_REPORTER, ConnectionBytes()) == {
        "context.reporter.kind": "inbound",
        "connection.mtls": False,
        "context.proxy_error_code": "-",
        "context.protocol": "tcp",
        "connection.event": "close",
        "connection.received.bytes": 7,
        "connection.sent.bytes": 9,
        "connection.received.bytes_total": 7,
        "connection.sent.bytes_total": 9,
    }


def test_without_a_response_code_there_is_no_response_code() -> None:
    entry = http_entry()
    entry.response.response_body_bytes = 3
    assert "response.code" not in http_attributes(entry, NO_REPORTER)


def test_the_entry_duration_stands_in_when_the_last_downstream_byte_time_is_missing() -> None:
    values = http_attributes(http_entry(duration={"nanos": 7000}, start_time={"seconds": 10}), NO_REPORTER)
    assert values["response.duration"] == Duration(7000)
    assert values["response.time"] == Timestamp(10_000_007_000)


def test_without_a_start_time_there_is_a_duration_but_no_times() -> None:
    values = http_attributes(http_entry(duration={"nanos": 7000}), NO_REPORTER)
    assert values["response.duration"] == Duration(7000)
    assert "request.time" not in values and "response.time" not in values


def test_a_path_without_a_query_has_no_query_params() -> None:
    entry = http_entry()
    entry.request.path = "/a/b"
    values = http_attributes(entry, NO_REPORTER)
    assert values["request.url_path"] == "/a/b"
    assert "request.query_params" not in values


def test_query_params_keep_the_first_value_and_blank_values() -> None:
    entry = http_entry()
    entry.request.path = "/?a=1&b&a=2&c=%2F"
    assert http_attributes(entry, NO_REPORTER)["request.query_params"] == {"a": "1", "b": "", "c": "/"}


@pytest.mark.parametrize(
    "method", [v.name for v in base_pb2.RequestMethod.DESCRIPTOR.values if v.name != "METHOD_UNSPECIFIED"]
)
def test_each_request_method_is_its_name(method: str) -> None:
    entry = http_entry()
    entry.request.request_method = base_pb2.RequestMethod.Value(method)
    values = http_attributes(entry, NO_REPORTER)
    assert values["request.method"] == values["request.headers"][":method"] == method


def test_an_unspecified_or_unknown_method_gives_no_method() -> None:
    entry = http_entry()
    assert "request.method" not in http_attributes(entry, NO_REPORTER)
    entry.request.request_method = 99  # an open enum: a newer Envoy's method
    assert "request.method" not in http_attributes(entry, NO_REPORTER)


# -- protocol ---------------------------------------------------------------------------------------


def test_a_grpc_content_type_makes_the_protocol_grpc() -> None:
    entry = http_entry()
    entry.request.request_headers["content-type"] = "application/grpc+proto"
    assert http_attributes(entry, NO_REPORTER)["context.protocol"] == "grpc"


def test_a_logged_grpc_status_trailer_makes_the_protocol_grpc_with_status_and_message() -> None:
    entry = http_entry()
    entry.response.response_trailers["grpc-status"] = "14"
    entry.response.response_trailers["grpc-message"] = "unavailable"
    values = http_attributes(entry, NO_REPORTER)
    assert values["context.protocol"] == "grpc"
    assert (values["response.grpc_status"], values["response.grpc_message"]) == ("14", "unavailable")


def test_a_trailer_wins_over_a_response_header_of_the_same_name() -> None:
    entry = http_entry()
    entry.response.response_headers["grpc-status"] = "0"
    entry.response.response_trailers["grpc-status"] = "2"
    values = http_attributes(entry, NO_REPORTER)
    assert values["response.grpc_status"] == values["response.headers"]["grpc-status"] == "2"
    assert "response.grpc_message" not in values


# -- addresses and direction ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cluster", "local", "upstream", "expected"),
    [
        # inbound: the downstream local address, else the upstream one
        ("inbound|9080||", "10.0.0.2", "127.0.0.1", "10.0.0.2"),
        ("inbound|9080||", None, "127.0.0.1", "127.0.0.1"),
        # a plain cluster name reports as inbound too
        ("backend", "10.0.0.2", "10.0.0.9", "10.0.0.2"),
        # outbound: the upstream remote address, else the downstream local one
        ("outbound|9080||r.default.svc.cluster.local", "10.96.0.1", "10.0.0.9", "10.0.0.9"),
        ("outbound|9080||r.default.svc.cluster.local", "10.96.0.1", None, "10.96.0.1"),
    ],
)
def test_the_destination_address_depends_on_the_direction(
    cluster: str, local: str | None, upstream: str | None, expected: str
) -> None:
    entry = http_entry(upstream_cluster=cluster)
    if local:
        entry.common_properties.downstream_local_address.CopyFrom(address(local, 9080))
    if upstream:
        entry.common_properties.upstream_remote_address.CopyFrom(address(upstream, 9081))
    values = http_attributes(entry, NO_REPORTER)
    assert values["destination.ip"] == ip(expected)
    assert values["destination.port"] == (9080 if expected == local else 9081)


def test_an_ipv6_address_with_a_zone_is_its_16_bytes() -> None:
    values = http_attributes(http_entry(downstream_remote_address=address("fe80::1%eth0", 443)), NO_REPORTER)
    assert values["source.ip"] == ip("fe80::1")
    assert values["source.port"] == 443


def test_a_pipe_address_and_a_zero_port_give_no_ip_or_port() -> None:
    pipe = address_pb2.Address(pipe=address_pb2.Pipe(path="/tmp/envoy.sock"))
    values = http_attributes(http_entry(downstream_remote_address=pipe), NO_REPORTER)
    assert "source.ip" not in values and "source.port" not in values
    values = http_attributes(http_entry(downstream_remote_address=address("10.0.0.1")), NO_REPORTER)
    assert values["source.ip"] == ip("10.0.0.1") and "source.port" not in values


# -- unmappable entries -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("common", "message"),
    [
        (
            {"downstream_remote_address": address("localhost", 80)},
            "downstream_remote_address: 'localhost' is not an IP address",
        ),
        (
            {"downstream_remote_address": address("10.0.0.1\x00", 80)},
            "downstream_remote_address: '10.0.0.1\\x00' is not an IP address",
        ),
        (
            {"upstream_remote_address": address("10.0.0.1", 70000), "upstream_cluster": "outbound|1||h"},
            "upstream_remote_address: port 70000 is out of range",
        ),
        ({"start_time": {"seconds": 253402300800}}, "start_time 253402300800s 0ns is out of range"),
        ({"duration": {"seconds": -1}}, "duration -1s 0ns is negative or out of range"),
        (
            {"time_to_last_downstream_tx_byte": {"nanos": -5}},
            "time_to_last_downstream_tx_byte 0s -5ns is negative or out of range",
        ),
    ],
)
def test_an_entry_whose_fields_cannot_be_attributes_is_unmappable_with_the_field_named(
    common: dict[str, Any], message: str
) -> None:
    with pytest.raises(UnmappableEntry) as e:
        http_attributes(http_entry(**common), NO_REPORTER)
    assert str(e.value) == message


def test_entries_without_common_properties_are_unmappable() -> None:
    with pytest.raises(UnmappableEntry, match=r"^HTTP entry without common_properties$"):
        http_attributes(accesslog_pb2.HTTPAccessLogEntry(), NO_REPORTER)
    with pytest.raises(UnmappableEntry, match=r"^TCP entry without common_properties$"):
        tcp_attributes(accesslog_pb2.TCPAccessLogEntry(), NO_REPORTER)


# -- cluster names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "direction", "service"),
    [
        (
            "outbound|9080||reviews.default.svc.cluster.local",
            "outbound",
            {
                "destination.service.host": "reviews.default.svc.cluster.local",
                "destination.service.name": "reviews",
                "destination.service.namespace": "default",
                "destination.service.uid": "istio://default/services/reviews",
            },
        ),
        (
            "outbound|9080|v2|reviews.prod.svc.cluster.local",
            "outbound",
            {
                "destination.service.host": "reviews.prod.svc.cluster.local",
                "destination.service.name": "reviews",
                "destination.service.namespace": "prod",
                "destination.service.uid": "istio://prod/services/reviews",
            },
        ),
        (
            "inbound|9080|http|ratings.default.svc.cluster.local",
            "inbound",
            {
                "destination.service.host": "ratings.default.svc.cluster.local",
                "destination.service.name": "ratings",
                "destination.service.namespace": "default",
                "destination.service.uid": "istio://default/services/ratings",
            },
        ),
        ("inbound|9080||", "inbound", {}),  # newer Istio: no host on inbound clusters
        (
            "outbound_.9080_.v1_.reviews.default.svc.cluster.local",  # the SNI form
            "outbound",
            {
                "destination.service.host": "reviews.default.svc.cluster.local",
                "destination.service.name": "reviews",
                "destination.service.namespace": "default",
                "destination.service.uid": "istio://default/services/reviews",
            },
        ),
        (
            "outbound|443||www.example.com",  # a ServiceEntry host: no Kubernetes name or namespace
            "outbound",
            {"destination.service.host": "www.example.com", "destination.service.name": "www.example.com"},
        ),
        ("backend", None, {"destination.service.host": "backend", "destination.service.name": "backend"}),
        (
            "outbound|http||x",  # not a port: not Istio's form, so the name as it is
            None,
            {"destination.service.host": "outbound|http||x", "destination.service.name": "outbound|http||x"},
        ),
        ("a|b|c", None, {"destination.service.host": "a|b|c", "destination.service.name": "a|b|c"}),
    ],
)
def test_cluster_names(name: str, direction: str | None, service: dict[str, str]) -> None:
    parsed = parse_cluster_name(name)
    assert parsed.direction == direction
    assert dict(parsed.service) == service
    values = http_attributes(http_entry(upstream_cluster=name), NO_REPORTER)
    assert {k: v for k, v in values.items() if k.startswith("destination.service.")} == service
    assert values["context.reporter.kind"] == (direction or "inbound")


def test_without_an_upstream_cluster_there_are_no_service_attributes() -> None:
    values = http_attributes(http_entry(), NO_REPORTER)
    assert not [k for k in values if k.startswith("destination.service.")]


# -- response flags ---------------------------------------------------------------------------------


def _flag_fields() -> list[Any]:
    return list(accesslog_pb2.ResponseFlags.DESCRIPTOR.fields)


def test_every_response_flag_envoy_can_send_has_its_short_text() -> None:
    assert sorted(RESPONSE_FLAG_CODES) == [f.number for f in _flag_fields()]
    assert len(set(RESPONSE_FLAG_CODES.values())) == len(RESPONSE_FLAG_CODES)


@pytest.mark.parametrize("field", _flag_fields(), ids=lambda f: f.name)
def test_each_response_flag_alone(field: Any) -> None:
    flags = accesslog_pb2.ResponseFlags()
    if field.name == "unauthorized_details":
        flags.unauthorized_details.reason = accesslog_pb2.ResponseFlags.Unauthorized.EXTERNAL_SERVICE
    else:
        setattr(flags, field.name, True)
    assert response_flags_text(flags) == RESPONSE_FLAG_CODES[field.number]


def test_response_flags_are_joined_in_envoys_order_and_none_is_a_dash() -> None:
    flags = accesslog_pb2.ResponseFlags(downstream_remote_reset=True, no_healthy_upstream=True)
    flags.unauthorized_details.SetInParent()
    assert response_flags_text(flags) == "UH,UAEX,DRR"
    assert response_flags_text(accesslog_pb2.ResponseFlags()) == "-"
    values = http_attributes(http_entry(response_flags={"no_route_found": True}), NO_REPORTER)
    assert values["context.proxy_error_code"] == "NR"


# -- TLS --------------------------------------------------------------------------------------------


def _tls(**fields: Any) -> accesslog_pb2.HTTPAccessLogEntry:
    return http_entry(tls_properties=accesslog_pb2.TLSProperties(**fields))


def _cert(*sans: dict[str, str], subject: str = "") -> Any:
    Props = accesslog_pb2.TLSProperties.CertificateProperties
    return Props(subject_alt_name=[Props.SubjectAltName(**s) for s in sans], subject=subject)


def test_inbound_principals_come_from_both_certificates() -> None:
    entry = _tls(
        tls_sni_hostname="reviews.example.com",
        peer_certificate_properties=_cert({"uri": "spiffe://cluster.local/ns/a/sa/client"}),
        local_certificate_properties=_cert({"dns": "reviews.example.com"}),
    )
    values = http_attributes(entry, NO_REPORTER)
    assert values["source.principal"] == "cluster.local/ns/a/sa/client"
    assert values["destination.principal"] == "reviews.example.com"  # no URI SAN: the DNS one
    assert values["connection.mtls"] is True
    assert values["connection.requested_server_name"] == "reviews.example.com"


def test_outbound_the_proxys_own_certificate_names_no_destination() -> None:
    entry = _tls(
        peer_certificate_properties=_cert({"uri": "spiffe://cluster.local/ns/a/sa/client"}),
        local_certificate_properties=_cert({"uri": "spiffe://cluster.local/ns/a/sa/gateway"}),
    )
    entry.common_properties.upstream_cluster = "outbound|443||api.example.com"
    values = http_attributes(entry, NO_REPORTER)
    assert values["source.principal"] == "cluster.local/ns/a/sa/client"
    assert "destination.principal" not in values


def test_tls_without_a_client_certificate_is_not_mtls() -> None:
    # Envoy writes empty peer properties on every TLS connection
    entry = _tls(peer_certificate_properties=_cert(), local_certificate_properties=_cert())
    values = http_attributes(entry, NO_REPORTER)
    assert values["connection.mtls"] is False
    assert "source.principal" not in values and "destination.principal" not in values
    assert "connection.requested_server_name" not in values


def test_a_client_certificate_with_only_a_subject_is_mtls_without_a_principal() -> None:
    values = http_attributes(_tls(peer_certificate_properties=_cert(subject="CN=x")), NO_REPORTER)
    assert values["connection.mtls"] is True
    assert "source.principal" not in values


# -- custom tags ------------------------------------------------------------------------------------


def test_custom_tags_named_like_string_attributes_set_them_and_others_are_ignored() -> None:
    entry = http_entry(
        custom_tags={
            "source.workload.name": "sleep",
            "request.host": "overridden",
            "destination.port": "80",  # INT64: not settable by a tag
            "team": "payments",  # no attribute
        }
    )
    entry.request.authority = "reviews"
    values = http_attributes(entry, NO_REPORTER)
    assert values["source.workload.name"] == "sleep"
    assert values["request.host"] == "overridden"
    assert "destination.port" not in values and "team" not in values


def test_a_reporter_kind_tag_decides_the_direction(reporter: Reporter) -> None:
    entry = http_entry(custom_tags={"context.reporter.kind": "outbound"}, upstream_cluster="backend")
    entry.common_properties.downstream_local_address.CopyFrom(address("10.0.0.2", 80))
    entry.common_properties.upstream_remote_address.CopyFrom(address("10.0.0.9", 8080))
    values = http_attributes(entry, reporter)
    assert values["context.reporter.kind"] == "outbound"
    assert values["destination.ip"] == ip("10.0.0.9")
    assert values["source.workload.name"] == "productpage"
    assert "destination.workload.name" not in values


# -- the reporting proxy ----------------------------------------------------------------------------


def test_an_istio_node_without_metadata() -> None:
    node = base_pb2.Node(id="sidecar~10.0.0.5~reviews-v2-7bf8c9648f-xcvd4.prod~prod.svc.cluster.local")
    node.cluster = "reviews.prod"
    reporter = reporter_from_node(node)
    assert reporter.uid == "kubernetes://reviews-v2-7bf8c9648f-xcvd4.prod"
    assert reporter.proxy_version is None
    assert reporter.as_destination == {
        "destination.uid": "kubernetes://reviews-v2-7bf8c9648f-xcvd4.prod",
        "destination.name": "reviews-v2-7bf8c9648f-xcvd4",
        "destination.namespace": "prod",
        "destination.workload.name": "reviews",
        "destination.workload.namespace": "prod",
        "destination.workload.uid": "istio://prod/workloads/reviews",
    }
    assert reporter.as_source == {
        k.replace("destination.", "source.", 1): v for k, v in reporter.as_destination.items()
    }


def test_a_plain_node_is_a_uid_and_a_workload_name() -> None:
    reporter = reporter_from_node(base_pb2.Node(id="edge-1", cluster="front-proxy"))
    assert reporter.uid == "edge-1"
    assert reporter.as_destination == {
        "destination.uid": "edge-1",
        "destination.workload.name": "front-proxy",
    }


def test_node_metadata_wins_over_id_and_cluster() -> None:
    node = base_pb2.Node(id="sidecar~10.0.0.5~pod-a.ns-a~ns-a.svc.cluster.local", cluster="ignored.ns-a")
    meta = node.metadata.fields
    meta["NAME"].string_value = "pod-b"
    meta["NAMESPACE"].string_value = "ns-b"
    meta["WORKLOAD_NAME"].string_value = "ratings-v1"
    meta["LABELS"].struct_value.fields["app"].string_value = "ratings"
    meta["LABELS"].struct_value.fields["replicas"].number_value = 3  # not a string: left out
    meta["ISTIO_VERSION"].string_value = "1.7.0"
    reporter = reporter_from_node(node)
    assert reporter.uid == "kubernetes://pod-a.ns-a"  # the uid names the pod of the id
    assert reporter.proxy_version == "1.7.0"
    assert reporter.as_source == {
        "source.uid": "kubernetes://pod-a.ns-a",
        "source.name": "pod-b",
        "source.namespace": "ns-b",
        "source.workload.name": "ratings-v1",
        "source.workload.namespace": "ns-b",
        "source.workload.uid": "istio://ns-b/workloads/ratings-v1",
        "source.labels": {"app": "ratings"},
    }


def test_an_empty_node_says_nothing() -> None:
    assert reporter_from_node(base_pb2.Node()) == Reporter(None, {}, {}, None)
    values = http_attributes(http_entry(), reporter_from_node(base_pb2.Node()))
    assert "context.reporter.uid" not in values and "context.proxy_version" not in values


# -- TCP events and byte counts ---------------------------------------------------------------------


def _tcp(stream_id: str, received: int, sent: int, log_type: int = 0, intermediate: bool = False) -> Any:
    return accesslog_pb2.TCPAccessLogEntry(
        common_properties=accesslog_pb2.AccessLogCommon(
            stream_id=stream_id, access_log_type=log_type, intermediate_log_entry=intermediate
        ),
        connection_properties=accesslog_pb2.ConnectionProperties(received_bytes=received, sent_bytes=sent),
    )


@pytest.mark.parametrize(
    ("log_type", "intermediate", "event"),
    [
        (accesslog_pb2.TcpUpstreamConnected, True, "open"),
        (accesslog_pb2.TcpPeriodic, True, "continue"),
        (accesslog_pb2.TcpConnectionEnd, False, "close"),
        (accesslog_pb2.NotSet, True, "continue"),  # an Envoy before access_log_type
        (accesslog_pb2.NotSet, False, "close"),
    ],
)
def test_the_connection_event_comes_from_the_log_type(log_type: int, intermediate: bool, event: str) -> None:
    values = tcp_attributes(_tcp("c", 1, 2, log_type, intermediate), NO_REPORTER)
    assert values["connection.event"] == event


def test_byte_increments_are_per_connection() -> None:
    bytes_seen = ConnectionBytes()
    a1 = tcp_attributes(_tcp("a", 10, 20, accesslog_pb2.TcpPeriodic, True), NO_REPORTER, bytes_seen)
    b1 = tcp_attributes(_tcp("b", 5, 5, accesslog_pb2.TcpPeriodic, True), NO_REPORTER, bytes_seen)
    a2 = tcp_attributes(_tcp("a", 15, 20, accesslog_pb2.TcpConnectionEnd), NO_REPORTER, bytes_seen)
    b2 = tcp_attributes(_tcp("b", 6, 9, accesslog_pb2.TcpPeriodic, True), NO_REPORTER, bytes_seen)

    def increments(values: dict[str, Any]) -> tuple[int, int]:
        return values["connection.received.bytes"], values["connection.sent.bytes"]

    assert [increments(v) for v in (a1, b1, a2, b2)] == [(10, 20), (5, 5), (5, 0), (1, 4)]
    assert len(bytes_seen) == 1  # a closed; b still open


def test_byte_increments_without_an_id_or_a_tracker_are_the_totals() -> None:
    bytes_seen = ConnectionBytes()
    for _ in range(2):
        values = tcp_attributes(_tcp("", 10, 20, accesslog_pb2.TcpPeriodic, True), NO_REPORTER, bytes_seen)
        assert (values["connection.received.bytes"], values["connection.sent.bytes"]) == (10, 20)
        values = tcp_attributes(_tcp("x", 10, 20, accesslog_pb2.TcpPeriodic, True), NO_REPORTER)
        assert (values["connection.received.bytes"], values["connection.sent.bytes"]) == (10, 20)
    assert len(bytes_seen) == 0


def test_connection_bytes_forget_the_oldest_past_the_limit_and_survive_shrinking_totals() -> None:
    seen = ConnectionBytes(limit=2)
    assert seen.increments("a", 10, 10, last=False) == (10, 10)
    assert seen.increments("b", 10, 10, last=False) == (10, 10)
    assert seen.increments("a", 12, 12, last=False) == (2, 2)  # touching a makes b the oldest
    assert seen.increments("c", 1, 1, last=False) == (1, 1)  # b is forgotten
    assert len(seen) == 2
    assert seen.increments("b", 11, 11, last=True) == (11, 11)  # counted whole again
    assert seen.increments("a", 5, 20, last=True) == (5, 8)  # a smaller total counts whole


def test_long_connection_ids_are_remembered_by_a_hash_not_kept() -> None:
    seen = ConnectionBytes()
    long_id = "c" * 1_000_000
    assert seen.increments(long_id, 10, 10, last=False) == (10, 10)
    assert seen.increments("c" * 1_000_000, 15, 12, last=False) == (5, 2)  # an equal id, another object
    assert all(isinstance(key, int) for key in seen._seen)  # the megabyte string is not kept
    assert seen.increments(long_id, 20, 20, last=True) == (5, 8) and len(seen) == 0


def test_long_cluster_names_parse_the_same_without_being_cached() -> None:
    from mixerd.server.envoy import accesslog_attributes

    cached = accesslog_attributes._cached_cluster_name
    name = "outbound|9080||" + "x" * 10_000 + ".default.svc.cluster.local"
    before = cached.cache_info().currsize
    assert parse_cluster_name(name) == parse_cluster_name("" + name)
    assert cached.cache_info().currsize == before
    assert dict(parse_cluster_name(name).service)["destination.service.namespace"] == "default"
