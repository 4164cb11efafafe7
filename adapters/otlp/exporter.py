"""The OTLP/gRPC connection: opentelemetry-exporter-otlp-proto-grpc's `OTLPSpanExporter`, one per handler.

The exporter encodes a batch of SDK spans (spans.py) into an ExportTraceServiceRequest and calls
/opentelemetry.proto.collector.trace.v1.TraceService/Export on its own gRPC channel. mixerd sets it up
from the handler's params only, and keeps the delivery queue (mixerd.batching) in charge of retrying:

- endpoint, TLS, headers, timeout and compression are all passed explicitly, so none of the
  `OTEL_EXPORTER_OTLP_*` environment variables the exporter reads for a missing setting applies. The
  endpoint is given with the scheme that matches the TLS choice (the exporter reads a scheme, and
  `https` would turn TLS on); headers are always a non-empty-looking value (`_Metadata`), because the
  exporter falls back to the environment's headers when the value it gets is empty;
- `retryable_error_codes` holds only OK, a code no failed call carries: the exporter retries nothing
  inside `export()` (it would otherwise sleep and retry there, 1 s doubling, for up to the timeout),
  and a failure returns at once. The exporter still re-creates its channel after an UNAVAILABLE, so
  the next attempt connects afresh;
- `export()` answers only SUCCESS or FAILURE: FAILURE raises ExportFailed, and the queue retries the
  batch with back-off. The exporter logs the failure's gRPC status and details itself (logger
  `opentelemetry.exporter.otlp.proto.grpc.exporter`, at ERROR, the same message at most once per 20 s);
  a status the OTLP specification calls permanent cannot be told from a transient one, and the
  receiver's answer (a partial success and its rejected-span count) is not passed on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import grpc
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from .params import Params, Tls

#: The exporter's retryable codes: OK alone, which no failed call has, so it never retries by itself.
NOT_RETRIED_INSIDE = (grpc.StatusCode.OK,)


#: Why an export failed, as far as the exporter tells.
FAILED = "the export failed (the OTLP exporter logs the gRPC status)"


class ExportFailed(Exception):
    """The export did not go through; the queue retries it."""


class _Metadata(tuple[tuple[str, str], ...]):
    """The headers sent with each export; true even when empty, so the exporter takes them as given
    (it reads OTEL_EXPORTER_OTLP_[TRACES_]HEADERS when its headers argument is empty)."""

    def __bool__(self) -> bool:
        return True


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
    """Exports batches of spans to one receiver. Calls must not overlap (the handler sends one batch
    at a time)."""

    def __init__(self, params: Params, reconnect_s: tuple[float, float]) -> None:
        self.endpoint = params.endpoint
        self._closed = False
        creds = credentials(params.tls)  # first: a file that cannot be read leaves nothing behind
        initial_ms, max_ms = (max(1, int(s * 1000)) for s in reconnect_s)
        # grpc's own reconnect back-off starts at 1 s and grows to 2 minutes: far too slow to notice a
        # restarted receiver, so it follows the delivery queue's back-off instead.
        options = (
            ("grpc.initial_reconnect_backoff_ms", initial_ms),
            ("grpc.min_reconnect_backoff_ms", initial_ms),
            ("grpc.max_reconnect_backoff_ms", max_ms),
        )
        self._exporter = OTLPSpanExporter(
            endpoint=f"{'http' if creds is None else 'https'}://{params.endpoint}",
            insecure=creds is None,
            credentials=creds,
            headers=_Metadata((k.lower(), v) for k, v in params.headers.items()),
            timeout=params.timeout / 1e9,
            compression=grpc.Compression.NoCompression,
            channel_options=options,  # (annotated as str values; grpc takes these ints)
            retryable_error_codes=NOT_RETRIED_INSIDE,
        )

    def export(self, spans: Sequence[ReadableSpan]) -> None:
        """Send one batch (blocking, up to the timeout); ExportFailed when it did not go through."""
        try:
            result = self._exporter.export(spans)
        except ValueError as e:  # the channel was closed under a send that was cut short
            raise ExportFailed(f"OTLP receiver at {self.endpoint}: {e}") from None
        if result is not SpanExportResult.SUCCESS:
            raise ExportFailed(f"OTLP receiver at {self.endpoint}: {FAILED}")

    def close(self) -> None:
        """Shut the exporter down and close its channel (an export still running fails). Idempotent."""
        if not self._closed:
            self._closed = True
            self._exporter.shutdown()
