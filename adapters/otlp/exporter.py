"""The OTLP/gRPC connection: one channel per handler, one `TraceService/Export` call per batch.

The requests are built from `opentelemetry-proto` (spans.py) and sent here with grpc, rather than
through opentelemetry-exporter-otlp's OTLPSpanExporter, because that exporter:
- takes SDK `ReadableSpan` objects, which it turns into these same protos: mixerd would build SDK
  spans (ids as ints, SpanContexts, Resources) only to have them taken apart again;
- retries inside `export()` (blocking the worker thread for up to its timeout) and answers only
  SUCCESS or FAILURE, while the delivery queue (mixerd.batching) already retries, backs off and counts;
- reads `OTEL_EXPORTER_OTLP_*` environment variables that would quietly change what a handler's params
  say.
The wire exchange is the same: an ExportTraceServiceRequest to /opentelemetry.proto.collector.trace.v1.
TraceService/Export, with the handler's headers as metadata.

Errors follow the OTLP specification: codes that mean "try again" raise ExportFailed (the queue retries
the batch with back-off); any other code means the receiver will never take this batch, so it raises
ExportRefused and the batch is given up (counted as rejected).
"""

from __future__ import annotations

from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from .params import Params, Tls

#: The codes after which OTLP says to retry. (RESOURCE_EXHAUSTED only with a retry hint in the spec;
#: mixerd retries it always, with the queue's back-off: a receiver under memory pressure recovers.)
RETRYABLE = frozenset(
    {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


class ExportFailed(Exception):
    """The export did not go through and may be retried."""


class ExportRefused(Exception):
    """The receiver refused the export for good (a non-retryable status)."""


def credentials(tls: Tls) -> grpc.ChannelCredentials | None:
    """TLS credentials from the params' files (None: plain text). ValueError naming the field when a
    file cannot be read."""
    if tls.insecure:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_read("tls.caFile", tls.ca_file),
        private_key=_read("tls.keyFile", tls.key_file),
        certificate_chain=_read("tls.certFile", tls.cert_file),
    )


def _read(name: str, path: str) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ValueError(f"{name}: cannot read {path}: {e.strerror or e}") from None


class Exporter:
    """Sends export requests to one receiver. Thread-safe (grpc channels are)."""

    def __init__(self, params: Params, reconnect_s: tuple[float, float]) -> None:
        self.endpoint = params.endpoint
        self._timeout_s = params.timeout / 1e9
        self._metadata = tuple((k.lower(), v) for k, v in params.headers.items())
        initial_ms, max_ms = (max(1, int(s * 1000)) for s in reconnect_s)
        # grpc's own reconnect back-off starts at 1 s and grows to 2 minutes: far too slow to notice a
        # restarted receiver, so it follows the delivery queue's back-off instead.
        options = [
            ("grpc.initial_reconnect_backoff_ms", initial_ms),
            ("grpc.min_reconnect_backoff_ms", initial_ms),
            ("grpc.max_reconnect_backoff_ms", max_ms),
        ]
        creds = credentials(params.tls)
        if creds is None:
            self._channel = grpc.insecure_channel(self.endpoint, options=options)
        else:
            self._channel = grpc.secure_channel(self.endpoint, creds, options=options)
        self._export = TraceServiceStub(self._channel).Export

    def export(self, request: ExportTraceServiceRequest) -> ExportTraceServiceResponse:
        """Send one request (blocking, up to the timeout); ExportFailed or ExportRefused when it fails."""
        try:
            response: ExportTraceServiceResponse = self._export(
                request, timeout=self._timeout_s, metadata=self._metadata
            )
        except grpc.RpcError as e:
            code = e.code() if isinstance(e, grpc.Call) else grpc.StatusCode.UNKNOWN
            details = e.details() if isinstance(e, grpc.Call) else str(e)
            message = f"OTLP receiver at {self.endpoint}: {code.name}: {details}"
            raise (ExportFailed if code in RETRYABLE else ExportRefused)(message) from None
        except ValueError as e:  # the channel was closed under a send that was cut short
            raise ExportFailed(f"OTLP receiver at {self.endpoint}: {e}") from None
        return response

    def close(self) -> None:
        """Close the channel (an export still running fails with CANCELLED). Idempotent."""
        self._channel.close()
