"""Reflection's own pool (mixer/server/reflection_pool.py): our Envoy files under Envoy's names."""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection

from mixerd.api.envoy.service.auth.v3 import external_auth_pb2
from mixerd.server import mixer_api
from mixerd.server.envoy import accesslog, authz, ratelimit
from mixerd.server.reflection_pool import envoy_file, ours, reflection_pool

FieldProto = descriptor_pb2.FieldDescriptorProto
SERVED = (
    mixer_api.SERVICE_NAME,
    authz.SERVICE_NAME,
    ratelimit.SERVICE_NAME,
    accesslog.SERVICE_NAME,
    health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
    reflection.SERVICE_NAME,
)


def _our_file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name="mixerd/envoy/service/x/v3/x.proto",
        package="mixerd.envoy.service.x.v3",
        dependency=[
            "google/protobuf/struct.proto",
            "mixerd/envoy/config/core/v3/base.proto",
            "mixer/v1/a.proto",
        ],
    )
    request = proto.message_type.add(name="Request")
    request.field.add(
        name="node", number=1, type=FieldProto.TYPE_MESSAGE, type_name=".mixerd.envoy.config.core.v3.Node"
    )
    request.field.add(
        name="meta", number=2, type=FieldProto.TYPE_MESSAGE, type_name=".google.protobuf.Struct"
    )
    request.field.add(name="text", number=3, type=FieldProto.TYPE_STRING)
    inner = request.nested_type.add(name="Inner")
    inner.field.add(
        name="back", number=1, type=FieldProto.TYPE_MESSAGE, type_name=".mixerd.envoy.service.x.v3.Request"
    )
    inner.field.add(
        name="mixer", number=2, type=FieldProto.TYPE_MESSAGE, type_name=".istio.mixer.v1.Attributes"
    )
    method = proto.service.add(name="X").method.add(name="Call")
    method.input_type, method.output_type = ".mixerd.envoy.service.x.v3.Request", ".google.protobuf.Struct"
    return proto


def test_an_envoy_file_gets_envoys_file_package_and_type_names_and_keeps_the_rest() -> None:
    ours_ = _our_file()
    before = ours_.SerializeToString()

    theirs = envoy_file(ours_)

    assert theirs.name == "envoy/service/x/v3/x.proto"
    assert theirs.package == "envoy.service.x.v3"
    assert list(theirs.dependency) == [
        "google/protobuf/struct.proto",
        "envoy/config/core/v3/base.proto",
        "mixer/v1/a.proto",
    ]
    request = theirs.message_type[0]
    assert [f.type_name for f in request.field] == [
        ".envoy.config.core.v3.Node",
        ".google.protobuf.Struct",
        "",
    ]
    assert [f.type_name for f in request.nested_type[0].field] == [
        ".envoy.service.x.v3.Request",
        ".istio.mixer.v1.Attributes",
    ]
    method = theirs.service[0].method[0]
    assert (method.input_type, method.output_type) == (
        ".envoy.service.x.v3.Request",
        ".google.protobuf.Struct",
    )
    assert ours_.SerializeToString() == before  # a copy: the argument is unchanged
    assert b"mixerd" not in theirs.SerializeToString()


def test_ours_names_our_copy_of_an_envoy_service_and_leaves_the_others() -> None:
    assert ours("envoy.service.auth.v3.Authorization") == "mixerd.envoy.service.auth.v3.Authorization"
    assert ours("istio.mixer.v1.Mixer") == "istio.mixer.v1.Mixer"


def _files(service: Any) -> dict[str, Any]:
    """Every file a service needs, by name."""
    out: dict[str, Any] = {}
    todo = [service.file]
    while todo:
        file = todo.pop()
        if file.name not in out:
            out[file.name] = file
            todo.extend(file.dependencies)
    return out


def test_the_pool_describes_envoys_services_under_envoys_names() -> None:
    pool = reflection_pool(SERVED)

    service = pool.FindServiceByName("envoy.service.auth.v3.Authorization")
    assert service.file.name == "envoy/service/auth/v3/external_auth.proto"
    [check] = service.methods
    assert (check.name, check.input_type.full_name, check.output_type.full_name) == (
        "Check",
        "envoy.service.auth.v3.CheckRequest",
        "envoy.service.auth.v3.CheckResponse",
    )
    rls = pool.FindServiceByName("envoy.service.ratelimit.v3.RateLimitService")
    descriptor = rls.methods_by_name["ShouldRateLimit"].input_type.fields_by_name["descriptors"].message_type
    assert descriptor.full_name == "envoy.extensions.common.ratelimit.v3.RateLimitDescriptor"
    als = pool.FindServiceByName("envoy.service.accesslog.v3.AccessLogService")
    assert als.methods_by_name["StreamAccessLogs"].input_type.full_name == (
        "envoy.service.accesslog.v3.StreamAccessLogsMessage"
    )
    for name in SERVED:  # nothing of our own names is left, in any file a client gets
        for file in _files(pool.FindServiceByName(name)).values():
            proto = descriptor_pb2.FileDescriptorProto()
            file.CopyToProto(proto)
            assert b"mixerd" not in proto.SerializeToString(), file.name


def test_the_pool_has_the_same_fields_as_our_messages() -> None:
    pool = reflection_pool(SERVED)
    theirs = pool.FindMessageTypeByName("envoy.service.auth.v3.CheckResponse")
    ours_ = external_auth_pb2.CheckResponse.DESCRIPTOR

    def fields(message: Any) -> list[tuple[str, int, int, str]]:
        return [
            (f.name, f.number, f.type, f.message_type.name if f.message_type else "") for f in message.fields
        ]

    assert fields(theirs) == fields(ours_)
    assert [f.name for f in theirs.oneofs_by_name["http_response"].fields] == [
        "denied_response",
        "ok_response",
        "error_response",
    ]


def test_the_other_services_are_described_as_they_are() -> None:
    pool = reflection_pool(SERVED)

    mixer = pool.FindServiceByName("istio.mixer.v1.Mixer")
    assert [m.name for m in mixer.methods] == ["Check", "Report"]
    assert mixer.file.name == "mixer/v1/mixer.proto"
    assert pool.FindServiceByName("grpc.health.v1.Health").file.name == health_pb2.DESCRIPTOR.name
    assert pool.FindMessageTypeByName("google.rpc.Status").fields_by_name["details"].number == 3
