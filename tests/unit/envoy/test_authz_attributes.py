"""The ext_authz AttributeContext -> attribute bag mapping (mixer/server/envoy/authz_attributes.py), field by
field, and the table in docs/envoy/authz.md that documents it."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest

from mixerd.api.envoy.service.auth.v3 import attribute_context_pb2
from mixerd.attribute import BUILTIN_MANIFEST, Timestamp, ValueType
from mixerd.server.envoy.authz_attributes import (
    ATTRIBUTE_NAMES,
    AttributeView,
    BadAttributes,
    attributes_of,
    ip_bytes,
    namespace_of,
    split_path,
)

AttributeContext = attribute_context_pb2.AttributeContext
DOC = Path(__file__).resolve().parents[3] / "docs" / "envoy" / "authz.md"

SOURCE_PRINCIPAL = "spiffe://cluster.local/ns/shop/sa/frontend"
DESTINATION_PRINCIPAL = "spiffe://cluster.local/ns/books/sa/reviews"


def full_context() -> Any:
    """An AttributeContext with every field the mapping reads set."""
    context = AttributeContext()
    source = context.source
    source.address.socket_address.address = "10.44.0.12"
    source.address.socket_address.port_value = 51234
    source.principal = SOURCE_PRINCIPAL
    source.labels["app"] = "frontend"
    destination = context.destination
    destination.address.socket_address.address = "fd00::17"
    destination.address.socket_address.port_value = 9080
    destination.principal = DESTINATION_PRINCIPAL
    destination.labels["version"] = "v2"
    destination.service = "reviews-cluster"  # not mapped
    context.request.time.seconds = 1_795_000_000
    context.request.time.nanos = 123_456_789
    http = context.request.http
    http.id = "12345678901234"
    http.method = "POST"
    http.path = "/reviews/7?lang=en&page=2&lang=fr&flag#frag"
    http.host = "reviews:9080"
    http.scheme = "https"
    http.size = 42
    http.protocol = "HTTP/2"
    http.body = "not mapped"
    http.headers.update(
        {
            ":path": "/reviews/7?lang=en&page=2&lang=fr&flag#frag",
            "user-agent": "curl/8.5",
            "referer": "https://shop/",
            "x-request-id": "5d0d2a5c-87b5-4bd2",
            "content-type": "application/json",
        }
    )
    context.context_extensions["tenant"] = "gold"
    context.tls_session.sni = "reviews.books.svc"
    return context


def test_every_field_of_a_full_context() -> None:
    assert attributes_of(full_context()) == {
        "source.ip": ipaddress.ip_address("10.44.0.12").packed,
        "source.port": 51234,
        "source.principal": SOURCE_PRINCIPAL,
        "source.user": SOURCE_PRINCIPAL,
        "source.namespace": "shop",
        "source.labels": {"app": "frontend"},
        "destination.ip": ipaddress.ip_address("fd00::17").packed,
        "destination.port": 9080,
        "destination.principal": DESTINATION_PRINCIPAL,
        "destination.namespace": "books",
        "destination.labels": {"version": "v2"},
        "connection.mtls": True,
        "connection.requested_server_name": "reviews.books.svc",
        "request.time": Timestamp.from_parts(1_795_000_000, 123_456_789),
        "request.headers": {
            ":path": "/reviews/7?lang=en&page=2&lang=fr&flag#frag",
            "user-agent": "curl/8.5",
            "referer": "https://shop/",
            "x-request-id": "5d0d2a5c-87b5-4bd2",
            "content-type": "application/json",
        },
        "request.id": "5d0d2a5c-87b5-4bd2",
        "request.method": "POST",
        "request.path": "/reviews/7?lang=en&page=2&lang=fr&flag#frag",
        "request.url_path": "/reviews/7",
        "request.query_params": {"lang": "en", "page": "2", "flag": ""},
        "request.host": "reviews:9080",
        "request.scheme": "https",
        "request.size": 42,
        "request.protocol": "HTTP/2",
        "request.useragent": "curl/8.5",
        "request.referer": "https://shop/",
        "context.protocol": "http",
        "context.reporter.kind": "inbound",
        "context.extensions": {"tenant": "gold"},
    }


def test_an_empty_context_still_says_who_reports_and_how() -> None:
    assert attributes_of(AttributeContext()) == {
        "context.reporter.kind": "inbound",
        "context.protocol": "tcp",
        "connection.mtls": False,
        "context.extensions": {},
    }


def test_an_http_request_without_headers_has_an_empty_header_map() -> None:
    context = AttributeContext()
    context.request.http.method = "GET"
    values = attributes_of(context)
    assert values["request.headers"] == {}
    assert values["context.protocol"] == "http"
    assert values["request.size"] == 0  # Envoy leaves 0 for a request without a body
    assert "request.path" not in values and "request.query_params" not in values


@pytest.mark.parametrize(
    ("content_type", "protocol"),
    [("application/grpc", "grpc"), ("application/grpc+proto", "grpc"), ("text/html", "http"), (None, "http")],
)
def test_context_protocol_follows_the_content_type(content_type: str | None, protocol: str) -> None:
    context = AttributeContext()
    context.request.http.method = "POST"
    if content_type is not None:
        context.request.http.headers["content-type"] = content_type
    assert attributes_of(context)["context.protocol"] == protocol


def test_an_unknown_size_is_left_out() -> None:
    context = AttributeContext()
    context.request.http.size = -1
    assert "request.size" not in attributes_of(context)


def test_request_id_falls_back_to_envoys_stream_id() -> None:
    context = AttributeContext()
    context.request.http.id = "8817"
    assert attributes_of(context)["request.id"] == "8817"


def test_raw_header_map_is_merged_like_envoys_header_map() -> None:
    context = AttributeContext()
    header_map = context.request.http.header_map
    header_map.headers.add(key="X-Tag", raw_value=b"a")
    header_map.headers.add(key="x-tag", raw_value=b"b")
    header_map.headers.add(key="x-bin", raw_value=b"\xffok")
    header_map.headers.add(key="User-Agent", raw_value=b"curl/8.5")
    values = attributes_of(context)
    assert values["request.headers"] == {"x-tag": "a,b", "x-bin": "\ufffdok", "user-agent": "curl/8.5"}
    assert values["request.useragent"] == "curl/8.5"


@pytest.mark.parametrize(
    ("principal", "namespace"),
    [
        ("spiffe://cluster.local/ns/shop/sa/frontend", "shop"),
        ("cluster.local/ns/shop/sa/frontend", "shop"),
        ("spiffe://example.org/workload", None),
        ("spiffe://td/ns//sa/x", None),
        ("alice@example.com", None),
    ],
)
def test_namespace_comes_only_from_an_istio_identity(principal: str, namespace: str | None) -> None:
    assert namespace_of(principal) == namespace
    context = AttributeContext()
    context.source.principal = principal
    assert attributes_of(context).get("source.namespace") == namespace


def test_mtls_is_a_client_certificate() -> None:
    with_principal = AttributeContext()
    with_principal.source.principal = "spiffe://td/ns/a/sa/b"
    with_certificate = AttributeContext()
    with_certificate.source.certificate = "-----BEGIN%20CERTIFICATE-----"
    only_destination = AttributeContext()
    only_destination.destination.principal = "spiffe://td/ns/a/sa/b"
    assert attributes_of(with_principal)["connection.mtls"] is True
    assert attributes_of(with_certificate)["connection.mtls"] is True
    assert attributes_of(only_destination)["connection.mtls"] is False
    assert "destination.user" not in attributes_of(only_destination)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", b"\x7f\x00\x00\x01"),
        ("::1", b"\x00" * 15 + b"\x01"),
        ("::ffff:10.0.0.1", ipaddress.ip_address("::ffff:10.0.0.1").packed),
        ("fe80::1%eth0", ipaddress.ip_address("fe80::1").packed),
    ],
)
def test_ip_addresses_become_raw_bytes(text: str, expected: bytes) -> None:
    assert ip_bytes(text, "here") == expected


def test_a_pipe_or_an_empty_address_gives_no_ip() -> None:
    context = AttributeContext()
    context.source.address.pipe.path = "/tmp/socket"
    context.destination.address.socket_address.port_value = 80
    values = attributes_of(context)
    assert not {"source.ip", "source.port", "destination.ip", "destination.port"} & set(values)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda c: setattr(c.source.address.socket_address, "address", "not-an-ip"),
            "attributes.source.address.socket_address.address: 'not-an-ip' is not an IP address",
        ),
        (
            lambda c: setattr(c.destination.address.socket_address, "address", "10.0.0.300"),
            "attributes.destination.address.socket_address.address: '10.0.0.300' is not an IP address",
        ),
        (  # a NUL, which the address parser refuses with another exception than a bad address's
            lambda c: setattr(c.source.address.socket_address, "address", "10.0.0.1\x00"),
            "attributes.source.address.socket_address.address: '10.0.0.1\\x00' is not an IP address",
        ),
        (
            lambda c: setattr(c.destination.address.socket_address, "address", "::1\x00%eth0"),
            "attributes.destination.address.socket_address.address: '::1\\x00%eth0' is not an IP address",
        ),
        (
            lambda c: (
                setattr(c.source.address.socket_address, "address", "10.0.0.1"),
                setattr(c.source.address.socket_address, "port_value", 70000),
            ),
            "attributes.source.address.socket_address.port_value: 70000 is above 65535",
        ),
        (
            lambda c: setattr(c.request.time, "nanos", 1_000_000_000),
            "attributes.request.time.nanos: 1000000000 is outside 0..999999999",
        ),
        (
            lambda c: setattr(c.request.time, "nanos", -1),
            "attributes.request.time.nanos: -1 is outside 0..999999999",
        ),
    ],
)
def test_a_field_that_cannot_be_mapped_is_named(build: Any, message: str) -> None:
    context = AttributeContext()
    build(context)
    with pytest.raises(BadAttributes) as error:
        attributes_of(context)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("path", "url_path", "params"),
    [
        ("/a", "/a", {}),
        ("/a?", "/a", {}),
        ("/a?x=1&y=2", "/a", {"x": "1", "y": "2"}),
        ("/a?x=1&x=2", "/a", {"x": "1"}),
        ("/a?x&&y=", "/a", {"x": "", "y": ""}),
        ("/a?q=a%20b&r=c=d", "/a", {"q": "a%20b", "r": "c=d"}),
        ("/a#frag?x=1", "/a", {}),
        ("/a?x=1#frag", "/a", {"x": "1"}),
    ],
)
def test_split_path(path: str, url_path: str, params: dict[str, str]) -> None:
    assert split_path(path) == (url_path, params)


_PYTHON_TYPES = {
    ValueType.STRING: str,
    ValueType.INT64: int,
    ValueType.BOOL: bool,
    ValueType.TIMESTAMP: Timestamp,
    ValueType.IP_ADDRESS: bytes,
    ValueType.STRING_MAP: dict,
}


def test_every_attribute_is_declared_with_the_type_of_its_value() -> None:
    for name, value in attributes_of(full_context()).items():
        assert name in BUILTIN_MANIFEST, f"{name} is not in the attribute manifest"
        assert isinstance(value, _PYTHON_TYPES[BUILTIN_MANIFEST[name]]), name


def documented_attributes() -> set[str]:
    """The attribute names in the first column of the mapping table in docs/envoy/authz.md."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Attributes", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 3:
            names.update(re.findall(r"`([a-z_.]+)`", cells[0]))
    return names


def test_the_doc_table_lists_exactly_the_attributes_the_mapping_makes() -> None:
    assert documented_attributes() == set(attributes_of(full_context())) == set(ATTRIBUTE_NAMES)


# -- the view the verdict cache reads -------------------------------------------------------------------


def _raw_headers_context() -> Any:
    context = AttributeContext()
    context.request.http.path = "/a?b=c"
    context.request.http.header_map.headers.add(key="X-User", raw_value=b"alice")
    context.request.http.header_map.headers.add(key="x-request-id", raw_value=b"r-9")
    context.request.http.header_map.headers.add(key="content-type", raw_value=b"application/grpc")
    return context


def _tcp_context() -> Any:
    context = AttributeContext()
    context.source.address.socket_address.address = "10.0.0.1"
    context.context_extensions["tenant"] = "gold"
    return context


def _headerless_context() -> Any:
    context = AttributeContext()
    context.request.http.method = "GET"
    context.request.http.id = "17"
    return context


@pytest.mark.parametrize(
    "make",
    [full_context, AttributeContext, _raw_headers_context, _tcp_context, _headerless_context],
    ids=["full", "empty", "raw headers", "tcp", "no headers"],
)
def test_the_view_reads_every_attribute_as_the_bag_has_it(make: Any) -> None:
    view = AttributeView(make())
    bag = view.values()
    for name in set(BUILTIN_MANIFEST) | set(ATTRIBUTE_NAMES):
        assert view.get(name) == bag.get(name), name
        assert view.has(name) is (name in bag), name
        if BUILTIN_MANIFEST.get(name) is ValueType.STRING_MAP:
            mapping = bag.get(name) or {}
            for key in [*mapping, "no-such-key"]:
                assert view.map_value(name, key) == mapping.get(key), (name, key)
