"""An OTLP/gRPC trace receiver, in process: the official TraceService of `opentelemetry-proto`
(PEERS.md section 5: no real collector, Jaeger or Zipkin server can be installed here) served by grpc on
a free loopback port. It records every export request and the metadata it came with.

It can be stopped mid-test and started again on the same port (fault tests), told to answer with an
error status (`fail_with`) or a partial success (`partial`), and serve TLS (`credentials`).

Test files load this module by path (tests have no packages), as they load receivers.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import (
    TraceServiceServicer,
    add_TraceServiceServicer_to_server,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as received, with its resource's attributes and its scope."""

    resource: dict[str, Any]
    scope: tuple[str, str]  # (name, version)
    span: Span

    @property
    def attributes(self) -> dict[str, Any]:
        return attributes(self.span.attributes)


def value(v: AnyValue) -> Any:
    """An AnyValue as a Python value (a key-value list as a dict, an array as a list)."""
    kind = v.WhichOneof("value")
    if kind == "kvlist_value":
        return attributes(v.kvlist_value.values)
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    return None if kind is None else getattr(v, kind)


def attributes(kvs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in kvs}


class _Service(TraceServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: ExportTraceServiceRequest, context: grpc.ServicerContext) -> Any:
        r = self._receiver
        with r._lock:
            r._attempts += 1
            fail = r.fail_with
            if fail is None:
                r._requests.append(request)
                r._metadata.append(dict(context.invocation_metadata()))
        if fail is not None:
            context.abort(fail, "the test receiver refuses")
        response = ExportTraceServiceResponse()
        if r.partial is not None:
            rejected, message = r.partial
            response.partial_success.CopyFrom(
                ExportTracePartialSuccess(rejected_spans=rejected, error_message=message)
            )
        return response


class OtlpReceiver:
    """The receiver on 127.0.0.1:`port` (0: a free one, kept across stop/start)."""

    def __init__(self, port: int = 0, credentials: grpc.ServerCredentials | None = None) -> None:
        self.port = port
        self.credentials = credentials
        self.fail_with: grpc.StatusCode | None = None  # answer every export with this status
        self.partial: tuple[int, str] | None = None  # answer (rejected spans, message)
        self._lock = threading.Lock()
        self._requests: list[ExportTraceServiceRequest] = []
        self._metadata: list[dict[str, Any]] = []
        self._attempts = 0
        self._server: grpc.Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> OtlpReceiver:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        add_TraceServiceServicer_to_server(_Service(self), server)
        where = f"127.0.0.1:{self.port}"
        if self.credentials is None:
            port = server.add_insecure_port(where)
        else:
            port = server.add_secure_port(where, self.credentials)
        if port == 0:
            raise RuntimeError(f"the OTLP receiver cannot listen on {where}")
        self.port = port
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop(None).wait(5)

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def attempts(self) -> int:
        """Export calls received, including refused ones."""
        with self._lock:
            return self._attempts

    def requests(self) -> list[ExportTraceServiceRequest]:
        with self._lock:
            return list(self._requests)

    def metadata(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._metadata)

    def spans(self) -> list[ReceivedSpan]:
        return list(self._spans())

    def _spans(self) -> Iterator[ReceivedSpan]:
        for request in self.requests():
            for resource_spans in request.resource_spans:
                resource = attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    scope = (scope_spans.scope.name, scope_spans.scope.version)
                    for span in scope_spans.spans:
                        yield ReceivedSpan(resource, scope, span)
