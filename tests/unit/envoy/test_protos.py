"""mixerd's own copies of Envoy's messages (protos/mixerd/envoy, mixerd.api.envoy): Envoy's wire, Envoy's
method paths, and names of their own that never clash with Envoy's protos in the same process.

The wire cases are written byte by byte from Envoy's field numbers and types
(../shared/reference/ENVOY.md sections 1-3), independently of the .proto files they check.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from google.protobuf import json_format

import mixerd.api.envoy
from mixerd.api.envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from mixerd.api.envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from mixerd.api.envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc
from mixerd.server import raw_handlers

# -- writing protobuf by hand ------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def num(field: int, value: int) -> bytes:
    """A varint field (int, uint, bool, enum)."""
    return _varint(field << 3) + _varint(value)


def fixed64(field: int, value: bytes) -> bytes:
    return _varint(field << 3 | 1) + value


def msg(field: int, *parts: bytes | str) -> bytes:
    """A length-delimited field: a message made of `parts`, or a string."""
    body = b"".join(p.encode() if isinstance(p, str) else p for p in parts)
    return _varint(field << 3 | 2) + _varint(len(body)) + body


def entry(field: int, key: str, value: str) -> bytes:
    """One entry of a map<string, string>."""
    return msg(field, msg(1, key), msg(2, value))


def _dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def decodes_to(raw: bytes, cls: Any, expected: dict[str, Any]) -> Any:
    """`raw` parses as `cls` into `expected` (JSON form), and writes back as the same bytes."""
    message = cls.FromString(raw)
    assert _dict(message) == expected
    assert message.SerializeToString() == raw  # fields in number order, as written here
    return message


# -- ext_authz ------------------------------------------------------------------------------------------


def test_a_check_request_with_headers_and_peers() -> None:
    address = msg(1, msg(1, msg(2, "10.0.0.1"), num(3, 51234)))  # Address.socket_address{address, port_value}
    raw = msg(
        1,  # CheckRequest.attributes
        msg(1, address, msg(4, "spiffe://cluster.local/ns/a/sa/b")),  # source{address, principal}
        msg(2, msg(1, msg(1, msg(2, "10.0.0.2"), num(3, 8080)))),  # destination
        msg(
            4,  # request
            msg(1, num(1, 1795221050), num(2, 5)),  # time{seconds, nanos}
            msg(
                2,  # http
                msg(1, "req-1"),  # id
                msg(2, "GET"),  # method
                entry(3, "x-user", "alice"),  # headers
                msg(4, "/books?id=7"),  # path
                msg(5, "shop"),  # host
                num(9, 2**64 - 1),  # size: -1 (int64, ten bytes)
                msg(10, "HTTP/1.1"),  # protocol
                msg(13, msg(1, msg(1, "x-raw"), msg(3, b"\xff"))),  # header_map{headers{key, raw_value}}
            ),
        ),
        entry(10, "tenant", "t1"),  # context_extensions
        msg(12, msg(1, "shop.example")),  # tls_session{sni}
    )

    request = decodes_to(
        raw,
        external_auth_pb2.CheckRequest,
        {
            "attributes": {
                "source": {
                    "address": {"socket_address": {"address": "10.0.0.1", "port_value": 51234}},
                    "principal": "spiffe://cluster.local/ns/a/sa/b",
                },
                "destination": {"address": {"socket_address": {"address": "10.0.0.2", "port_value": 8080}}},
                "request": {
                    "time": "2026-11-21T00:30:50.000000005Z",
                    "http": {
                        "id": "req-1",
                        "method": "GET",
                        "headers": {"x-user": "alice"},
                        "path": "/books?id=7",
                        "host": "shop",
                        "size": "-1",
                        "protocol": "HTTP/1.1",
                        "header_map": {"headers": [{"key": "x-raw", "raw_value": "/w=="}]},
                    },
                },
                "context_extensions": {"tenant": "t1"},
                "tls_session": {"sni": "shop.example"},
            }
        },
    )
    assert request.attributes.request.http.size == -1


def test_a_denied_and_an_allowed_check_response() -> None:
    header = msg(1, msg(1, "x-why"), msg(2, "policy"))  # HeaderValueOption.header{key, value}
    denied = msg(1, num(1, 7), msg(2, "no")) + msg(  # status{code, message}
        2,  # denied_response
        msg(1, num(1, 403)),  # status: HttpStatus{code}
        msg(2, header, num(3, 2)),  # headers{header, append_action OVERWRITE_IF_EXISTS_OR_ADD}
        msg(3, "denied"),  # body
    )
    decodes_to(
        denied,
        external_auth_pb2.CheckResponse,
        {
            "status": {"code": 7, "message": "no"},
            "denied_response": {
                "status": {"code": "Forbidden"},
                "headers": [
                    {
                        "header": {"key": "x-why", "value": "policy"},
                        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                    }
                ],
                "body": "denied",
            },
        },
    )
    allowed = msg(1) + msg(  # status: present, code 0
        3,  # ok_response
        msg(2, header, msg(2, num(1, 1))),  # headers{header, append: BoolValue{true}}
        msg(5, "x-drop"),  # headers_to_remove
        msg(6, header, num(3, 1)),  # response_headers_to_add{header, append_action ADD_IF_ABSENT}
        msg(7, msg(1, "page"), msg(2, "2")),  # query_parameters_to_set{key, value}
        msg(8, "debug"),  # query_parameters_to_remove
    )
    response = decodes_to(
        allowed,
        external_auth_pb2.CheckResponse,
        {
            "status": {},
            "ok_response": {
                "headers": [{"header": {"key": "x-why", "value": "policy"}, "append": True}],
                "headers_to_remove": ["x-drop"],
                "response_headers_to_add": [
                    {"header": {"key": "x-why", "value": "policy"}, "append_action": "ADD_IF_ABSENT"}
                ],
                "query_parameters_to_set": [{"key": "page", "value": "2"}],
                "query_parameters_to_remove": ["debug"],
            },
        },
    )
    assert response.WhichOneof("http_response") == "ok_response"
    error = msg(5, msg(1, num(1, 503)))  # error_response, the third member of the oneof
    assert external_auth_pb2.CheckResponse.FromString(error).WhichOneof("http_response") == "error_response"


# -- RLS ------------------------------------------------------------------------------------------------


def test_a_rate_limit_request_with_an_override_and_hits_addends() -> None:
    raw = (
        msg(1, "edge")  # domain
        + msg(
            2,  # descriptors
            msg(1, msg(1, "remote_address"), msg(2, "10.0.0.1")),  # entries{key, value}
            msg(1, msg(1, "path"), msg(2, "/")),
            msg(2, num(1, 7), num(2, 3)),  # limit{requests_per_unit, unit HOUR}
            msg(3, num(1, 2**40)),  # hits_addend: UInt64Value{value}
        )
        + num(3, 5)  # hits_addend (uint32)
    )

    request = decodes_to(
        raw,
        rls_pb2.RateLimitRequest,
        {
            "domain": "edge",
            "descriptors": [
                {
                    "entries": [
                        {"key": "remote_address", "value": "10.0.0.1"},
                        {"key": "path", "value": "/"},
                    ],
                    "limit": {"requests_per_unit": 7, "unit": "HOUR"},
                    "hits_addend": str(2**40),
                }
            ],
            "hits_addend": 5,
        },
    )
    assert request.descriptors[0].HasField("hits_addend")


def test_a_rate_limit_response() -> None:
    raw = (
        num(1, 2)  # overall_code OVER_LIMIT
        + msg(
            2,  # statuses
            num(1, 2),  # code
            msg(
                2, num(1, 10), num(2, 7), msg(3, "weekly")
            ),  # current_limit{requests_per_unit, unit WEEK, name}
            num(3, 0),  # limit_remaining (written although 0, and skipped when written back)
            msg(4, num(1, 42)),  # duration_until_reset{seconds}
        )
        + msg(3, msg(1, "x-ratelimit-limit"), msg(2, "10"))  # response_headers_to_add: HeaderValue
        + msg(5, b"slow down")  # raw_body
    )

    response = rls_pb2.RateLimitResponse.FromString(raw)

    assert _dict(response) == {
        "overall_code": "OVER_LIMIT",
        "statuses": [
            {
                "code": "OVER_LIMIT",
                "current_limit": {"requests_per_unit": 10, "unit": "WEEK", "name": "weekly"},
                "duration_until_reset": "42s",
            }
        ],
        "response_headers_to_add": [{"key": "x-ratelimit-limit", "value": "10"}],
        "raw_body": "c2xvdyBkb3du",
    }


# -- ALS ------------------------------------------------------------------------------------------------


def test_an_access_log_message_with_an_http_entry() -> None:
    socket = msg(1, msg(2, "10.44.0.12"), num(3, 51234))  # Address.socket_address
    san = msg(1, msg(1, "spiffe://cluster.local/ns/default/sa/sleep"))  # subject_alt_name{uri}
    common = msg(
        1,  # common_properties
        fixed64(1, b"\x00\x00\x00\x00\x00\x00\xf0\x3f"),  # sample_rate 1.0 (double)
        msg(2, socket),  # downstream_remote_address
        msg(4, num(1, 4), msg(3, "reviews"), msg(5, san)),  # tls_properties{TLSv1_3, sni, peer certificate}
        msg(5, num(1, 1795221050)),  # start_time
        msg(12, num(2, 4210000)),  # time_to_last_downstream_tx_byte{nanos}
        msg(15, "outbound|9080||reviews.default.svc.cluster.local"),  # upstream_cluster
        msg(16, num(2, 1), msg(13, num(1, 1)), num(28, 1)),  # response_flags: UH, UAEX, DRR
        entry(22, "team", "books"),  # custom_tags
        msg(23, num(1, 1)),  # duration
        msg(26, "stream-1"),  # stream_id
        num(33, 6),  # access_log_type DownstreamEnd
    )
    http = msg(
        1,  # log_entry
        common,
        num(2, 3),  # protocol_version HTTP2
        msg(
            3,  # request
            num(1, 3),  # request_method POST
            msg(3, "reviews:9080"),  # authority
            msg(4, num(1, 9080)),  # port: UInt32Value
            msg(5, "/reviews/0"),  # path
            num(11, 255),  # request_headers_bytes
            num(12, 1024),  # request_body_bytes
            entry(13, "x-user", "jason"),  # request_headers
        ),
        msg(4, msg(1, num(1, 504)), num(3, 24), entry(5, "x-trailer", "done")),  # response
    )
    identifier = msg(
        1,
        msg(1, msg(1, "sidecar~10.44.0.12~pod.default~default.svc.cluster.local"), msg(2, "productpage")),
        msg(2, "mixerd"),  # log_name
    )
    raw = identifier + msg(2, http)  # http_logs

    message = decodes_to(
        raw,
        als_pb2.StreamAccessLogsMessage,
        {
            "identifier": {
                "node": {
                    "id": "sidecar~10.44.0.12~pod.default~default.svc.cluster.local",
                    "cluster": "productpage",
                },
                "log_name": "mixerd",
            },
            "http_logs": {
                "log_entry": [
                    {
                        "common_properties": {
                            "sample_rate": 1.0,
                            "downstream_remote_address": {
                                "socket_address": {"address": "10.44.0.12", "port_value": 51234}
                            },
                            "tls_properties": {
                                "tls_version": "TLSv1_3",
                                "tls_sni_hostname": "reviews",
                                "peer_certificate_properties": {
                                    "subject_alt_name": [
                                        {"uri": "spiffe://cluster.local/ns/default/sa/sleep"}
                                    ]
                                },
                            },
                            "start_time": "2026-11-21T00:30:50Z",
                            "time_to_last_downstream_tx_byte": "0.004210s",
                            "upstream_cluster": "outbound|9080||reviews.default.svc.cluster.local",
                            "response_flags": {
                                "no_healthy_upstream": True,
                                "unauthorized_details": {"reason": "EXTERNAL_SERVICE"},
                                "downstream_remote_reset": True,
                            },
                            "custom_tags": {"team": "books"},
                            "duration": "1s",
                            "stream_id": "stream-1",
                            "access_log_type": "DownstreamEnd",
                        },
                        "protocol_version": "HTTP2",
                        "request": {
                            "request_method": "POST",
                            "authority": "reviews:9080",
                            "port": 9080,
                            "path": "/reviews/0",
                            "request_headers_bytes": "255",
                            "request_body_bytes": "1024",
                            "request_headers": {"x-user": "jason"},
                        },
                        "response": {
                            "response_code": 504,
                            "response_body_bytes": "24",
                            "response_trailers": {"x-trailer": "done"},
                        },
                    }
                ]
            },
        },
    )
    assert message.http_logs.log_entry[0].response.HasField("response_code")


def test_an_access_log_message_with_a_tcp_entry() -> None:
    tcp = msg(
        1,  # log_entry
        msg(1, msg(26, "conn-1"), num(27, 1), num(33, 2)),  # common{stream_id, intermediate, TcpPeriodic}
        msg(2, num(1, 300), num(2, 1200)),  # connection_properties{received_bytes, sent_bytes}
    )

    decodes_to(
        msg(3, tcp),  # tcp_logs
        als_pb2.StreamAccessLogsMessage,
        {
            "tcp_logs": {
                "log_entry": [
                    {
                        "common_properties": {
                            "stream_id": "conn-1",
                            "intermediate_log_entry": True,
                            "access_log_type": "TcpPeriodic",
                        },
                        "connection_properties": {"received_bytes": "300", "sent_bytes": "1200"},
                    }
                ]
            }
        },
    )


# -- method paths -----------------------------------------------------------------------------------------


class _Recorder:
    """A channel (and a server) that records the paths and service names it is given."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.services: list[str] = []

    def _method(self, path: str, **_: Any) -> None:
        self.paths.append(path)

    unary_unary = stream_unary = _method

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self.services += [h.service_name() for h in handlers]

    def add_registered_method_handlers(self, service: str, _handlers: Any) -> None:
        self.services.append(service)


def test_the_stubs_call_envoys_method_paths() -> None:
    channel = _Recorder()
    external_auth_pb2_grpc.AuthorizationStub(channel)
    rls_pb2_grpc.RateLimitServiceStub(channel)
    als_pb2_grpc.AccessLogServiceStub(channel)

    assert channel.paths == [
        "/envoy.service.auth.v3.Authorization/Check",
        "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit",
        "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs",
    ]


def test_generated_servicers_register_envoys_service_names() -> None:
    server = _Recorder()
    als_pb2_grpc.add_AccessLogServiceServicer_to_server(als_pb2_grpc.AccessLogServiceServicer(), server)
    assert server.services == [raw_handlers.ENVOY_ACCESS_LOG_SERVICE] * 2


def test_the_served_names_are_envoys_names_of_our_services() -> None:
    ours = {
        raw_handlers.ENVOY_AUTHORIZATION: external_auth_pb2.DESCRIPTOR.services_by_name["Authorization"],
        raw_handlers.ENVOY_RATE_LIMIT_SERVICE: rls_pb2.DESCRIPTOR.services_by_name["RateLimitService"],
        raw_handlers.ENVOY_ACCESS_LOG_SERVICE: als_pb2.DESCRIPTOR.services_by_name["AccessLogService"],
    }
    for envoy_name, service in ours.items():
        assert service.full_name == "mixerd." + envoy_name


# -- names of our own ---------------------------------------------------------------------------------------


def _our_modules() -> list[Any]:
    names = pkgutil.walk_packages(mixerd.api.envoy.__path__, "mixerd.api.envoy.")
    return [importlib.import_module(m.name) for m in names if m.name.endswith("_pb2")]


def test_every_file_and_package_of_ours_is_named_apart_from_envoys() -> None:
    modules = _our_modules()

    assert len(modules) == 11
    for module in modules:
        assert module.DESCRIPTOR.name.startswith("mixerd/envoy/"), module.__name__
        assert module.DESCRIPTOR.package.startswith("mixerd.envoy."), module.__name__


_ENVOYS_CHECK_REQUEST = """
from google.protobuf import descriptor_pb2, descriptor_pool

def add_envoys():
    # A file as Envoy's own protos (xds-protos, say) register it, with a CheckRequest unlike ours.
    proto = descriptor_pb2.FileDescriptorProto(
        name="envoy/service/auth/v3/external_auth.proto", package="envoy.service.auth.v3", syntax="proto3"
    )
    proto.message_type.add(name="CheckRequest").field.add(
        name="theirs", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING
    )
    descriptor_pool.Default().Add(proto)

def use_ours():
    from mixerd.api.envoy.service.auth.v3 import external_auth_pb2
    from mixerd.server import app, mixer_api
    from mixerd.server.envoy import accesslog, authz, ratelimit
    from mixerd.server.reflection_pool import reflection_pool

    assert external_auth_pb2.CheckRequest.DESCRIPTOR.fields[0].name == "attributes"
    served = [mixer_api.SERVICE_NAME, authz.SERVICE_NAME, ratelimit.SERVICE_NAME, accesslog.SERVICE_NAME]
    pool = reflection_pool(served)
    assert pool.FindMessageTypeByName("envoy.service.auth.v3.CheckRequest").fields[0].name == "attributes"

{calls}
theirs = descriptor_pool.Default().FindMessageTypeByName("envoy.service.auth.v3.CheckRequest")
assert [f.name for f in theirs.fields] == ["theirs"]
print("ok")
"""


@pytest.mark.parametrize("calls", ["add_envoys()\nuse_ours()", "use_ours()\nadd_envoys()"])
def test_envoys_own_protos_and_ours_load_in_one_process_in_either_order(calls: str) -> None:
    code = textwrap.dedent(_ENVOYS_CHECK_REQUEST).replace("{calls}", calls)

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)

    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\n", "")
