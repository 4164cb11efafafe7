"""The descriptor pool gRPC reflection describes mixerd's services from, Envoy's under Envoy's names.

mixerd's copies of Envoy's messages have file names and a package of their own (`mixerd/envoy/...`,
`mixerd.envoy.*`: protos/mixerd/README.md), so they never clash with Envoy's own protos loaded in the same
process. Their services are served under Envoy's names, though (`envoy.service.auth.v3.Authorization`),
and reflection clients (grpcurl, grpc_cli, Postman) must find them by those names. `reflection_pool` builds
a pool of its own for reflection: every served file with its dependencies, our Envoy files translated
back to Envoy's file, package and type names (`envoy_file`). The default pool is left as it is.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor

# Our Envoy files, packages and type references are Envoy's with `mixerd` in front.
_OUR_FILES, _OUR_PACKAGES, _OUR_TYPES = "mixerd/envoy/", "mixerd.envoy.", ".mixerd.envoy."


def ours(service: str) -> str:
    """The full name, in our descriptors, of a service mixerd serves under `service`."""
    return "mixerd." + service if service.startswith("envoy.") else service


def envoy_file(file: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    """A copy of one of our files with our Envoy names (its own, its package's, its dependencies', the
    types it refers to) turned into Envoy's: `mixerd/envoy/x.proto` -> `envoy/x.proto`, `mixerd.envoy.x`
    -> `envoy.x`. Names that are not ours stay as they are."""
    proto = descriptor_pb2.FileDescriptorProto()
    proto.CopyFrom(file)
    proto.name = _file(proto.name)
    if proto.package.startswith(_OUR_PACKAGES):
        proto.package = proto.package.removeprefix("mixerd.")
    proto.dependency[:] = [_file(d) for d in proto.dependency]
    for message in proto.message_type:
        _message(message)
    for field in proto.extension:
        _field(field)
    for service in proto.service:
        for method in service.method:
            method.input_type = _type(method.input_type)
            method.output_type = _type(method.output_type)
    return proto


def reflection_pool(
    services: Iterable[str], source: descriptor_pool.DescriptorPool | None = None
) -> descriptor_pool.DescriptorPool:
    """A new pool with the files that define `services` (full names as served) and all they import,
    from `source` (the default pool), our Envoy files translated by `envoy_file`."""
    source = source or descriptor_pool.Default()
    files: dict[str, FileDescriptor] = {}  # dependencies before the files that import them
    for service in services:
        _collect(source.FindServiceByName(ours(service)).file, files)
    pool = descriptor_pool.DescriptorPool()
    for name, file in files.items():
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        pool.Add(envoy_file(proto) if name.startswith(_OUR_FILES) else proto)
    return pool


def _collect(file: FileDescriptor, files: dict[str, FileDescriptor]) -> None:
    if file.name in files:
        return
    for dependency in file.dependencies:
        _collect(dependency, files)
    files[file.name] = file


def _file(name: str) -> str:
    return name.removeprefix("mixerd/") if name.startswith(_OUR_FILES) else name


def _type(name: str) -> str:
    return "." + name.removeprefix(".mixerd.") if name.startswith(_OUR_TYPES) else name


def _field(field: descriptor_pb2.FieldDescriptorProto) -> None:
    if field.type_name:
        field.type_name = _type(field.type_name)
    if field.extendee:
        field.extendee = _type(field.extendee)


def _message(message: descriptor_pb2.DescriptorProto) -> None:
    for field in (*message.field, *message.extension):
        _field(field)
    for nested in message.nested_type:
        _message(nested)
