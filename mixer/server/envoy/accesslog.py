"""envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs (ALS v3): Envoy's access logs as Reports.

Envoy's gRPC access loggers (`envoy.access_loggers.http_grpc`, `tcp_grpc`) open a client stream and send
`StreamAccessLogsMessage`s: the first carries the stream identifier (the proxy's node and log name),
each carries a batch of HTTP or TCP entries. Every entry becomes one report bag
(accesslog_attributes.py has the mapping, docs/envoy/accesslog.md the table), and the bags of one
message go through the Report pipeline together, `dispatcher.report(bags)`, in the order received.

The contract, from Envoy's side of it (the API is lossy by design: no acks, no retries):
- The stream is read for as long as Envoy keeps it open. Report does not wait on telemetry backends
  (handlers queue, DESIGN decision 6), so a slow or unreachable backend does not slow the reading.
- Nothing kills a stream but the client: a message that is not valid protobuf, an entry that cannot
  be mapped, a Report the pipeline fails: each is counted, logged (the first of a stream as a warning,
  the rest at debug level) and skipped.
- The response is empty; it is sent when the client closes its side.

Self metrics (on /metrics): `mixerd_envoy_accesslog_streams_total` and `_streams_open`,
`_entries_total{type="http"|"tcp"}`, `_bags_reported_total`, `_entries_unmappable_total`,
`_messages_malformed_total`, `_report_errors_total`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from time import perf_counter
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ...api.envoy.service.accesslog.v3 import als_pb2
from ...attribute import AttributeBag
from ...dispatch import Dispatcher, DispatchError
from ..raw_handlers import ENVOY_ACCESS_LOG_SERVICE, add_raw_handlers
from ..stats import ACCESSLOG_API, Stats
from .accesslog_attributes import (
    NO_REPORTER,
    ConnectionBytes,
    Reporter,
    UnmappableEntry,
    http_attributes,
    reporter_from_node,
    tcp_attributes,
)
from .accesslog_streams import StreamInfo, StreamRegistry

if TYPE_CHECKING:
    from . import FrontEndContext

SERVICE_NAME = ENVOY_ACCESS_LOG_SERVICE

_log = logging.getLogger(__name__)
_Message = als_pb2.StreamAccessLogsMessage
_EMPTY = b""  # StreamAccessLogsResponse has no fields
_wrap = AttributeBag.wrap


class AccessLogStats:
    """The service's counters (plain ints: the event loop is one thread)."""

    __slots__ = (
        "bags_reported",
        "http_entries",
        "malformed_messages",
        "report_errors",
        "streams",
        "streams_open",
        "tcp_entries",
        "unmappable_entries",
    )

    def __init__(self) -> None:
        self.streams = 0
        self.streams_open = 0
        self.http_entries = 0
        self.tcp_entries = 0
        self.bags_reported = 0
        self.unmappable_entries = 0
        self.malformed_messages = 0
        self.report_errors = 0


class AccessLogCollector(Collector):
    """Publishes an AccessLogStats at scrape time."""

    def __init__(self, stats: AccessLogStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self._stats
        prefix = "mixerd_envoy_accesslog"
        yield CounterMetricFamily(f"{prefix}_streams", "Access-log streams Envoy opened.", value=s.streams)
        yield GaugeMetricFamily(
            f"{prefix}_streams_open", "Access-log streams open now.", value=s.streams_open
        )
        entries = CounterMetricFamily(
            f"{prefix}_entries", "Access-log entries received, by type.", labels=["type"]
        )
        entries.add_metric(["http"], s.http_entries)
        entries.add_metric(["tcp"], s.tcp_entries)
        yield entries
        yield CounterMetricFamily(
            f"{prefix}_bags_reported", "Bags handed to the Report pipeline.", value=s.bags_reported
        )
        yield CounterMetricFamily(
            f"{prefix}_entries_unmappable",
            "Entries dropped because they could not be mapped to attributes.",
            value=s.unmappable_entries,
        )
        yield CounterMetricFamily(
            f"{prefix}_messages_malformed",
            "Stream messages dropped because they were not valid protobuf.",
            value=s.malformed_messages,
        )
        yield CounterMetricFamily(
            f"{prefix}_report_errors",
            "Messages whose bags the Report pipeline failed (some rule or adapter failed).",
            value=s.report_errors,
        )


class _Stream:
    """What one stream remembers: who sends it, its open TCP connections, whether it complained yet, and
    what the admin page shows of it (`info`)."""

    __slots__ = ("connections", "info", "reporter", "warned")

    def __init__(self, info: StreamInfo) -> None:
        self.reporter: Reporter = NO_REPORTER
        self.connections = ConnectionBytes()
        self.warned = False
        self.info = info

    def log(self, text: str, *args: Any, error: BaseException | None = None) -> None:
        """The stream's first problem is a warning, later ones are debug (a bad proxy can be loud);
        `error`, an unexpected exception, is logged with its traceback."""
        level = logging.DEBUG if self.warned else logging.WARNING
        self.warned = True
        _log.log(level, text, *args, exc_info=error)


class AccessLogService:
    """StreamAccessLogs over raw bytes (each message is parsed here, so a bad one is skipped alone)."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        stats: AccessLogStats,
        stopping: asyncio.Event | None = None,
        streams: StreamRegistry | None = None,
        clock: Callable[[], int] = time.time_ns,
        server_stats: Stats | None = None,
    ) -> None:
        self._seconds = (server_stats or Stats()).durations.of(ACCESSLOG_API)  # per message
        self._dispatcher = dispatcher
        self._clock = clock
        self.stats = stats
        self._stopping = stopping or asyncio.Event()
        self.streams = streams if streams is not None else StreamRegistry()

    def add_to_server(self, server: grpc.aio.Server) -> None:
        handlers = {"StreamAccessLogs": grpc.stream_unary_rpc_method_handler(self.stream_access_logs)}
        add_raw_handlers(server, SERVICE_NAME, handlers)

    async def stream_access_logs(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> bytes:
        stats = self.stats
        stats.streams += 1
        stats.streams_open += 1
        stream = _Stream(self.streams.open(context.peer() or "", self._clock()))
        try:
            async for raw in _until(requests, self._stopping):
                started = perf_counter()
                bags = self._bags(raw, stream)
                if bags:
                    await self._report(bags, stream)
                self._seconds.observe(perf_counter() - started)
        finally:
            stats.streams_open -= 1
            self.streams.close(stream.info)
        return _EMPTY  # also when stopping: the stream ends cleanly and Envoy opens a new one elsewhere

    def _bags(self, raw: bytes, stream: _Stream) -> list[AttributeBag]:
        stats = self.stats
        try:
            message = _Message.FromString(raw)
        except DecodeError as e:
            stats.malformed_messages += 1
            stream.log("envoy access log: skipped a malformed StreamAccessLogsMessage: %s", e)
            return []
        info = stream.info
        info.messages += 1
        if message.HasField("identifier"):
            identifier = message.identifier
            stream.reporter = reporter_from_node(identifier.node)
            info.identify(identifier.node.id, identifier.node.cluster, identifier.log_name)
        which = message.WhichOneof("log_entries")
        mapper: Callable[[Any], dict[str, Any]]
        if which == "http_logs":
            entries: Any = message.http_logs.log_entry
            stats.http_entries += len(entries)
            info.http_entries += len(entries)
            mapper = partial(http_attributes, reporter=stream.reporter)
        elif which == "tcp_logs":
            entries = message.tcp_logs.log_entry
            stats.tcp_entries += len(entries)
            info.tcp_entries += len(entries)
            mapper = partial(tcp_attributes, reporter=stream.reporter, connections=stream.connections)
        else:
            return []
        bags = []
        for position, entry in enumerate(entries):
            try:
                bags.append(_wrap(mapper(entry)))
            except UnmappableEntry as e:
                stats.unmappable_entries += 1
                stream.log("envoy access log: skipped %s entry %d of a message: %s", which, position, e)
            except Exception as e:  # a bug of ours must not end Envoy's stream either
                stats.unmappable_entries += 1
                stream.log("envoy access log: mapping %s entry %d failed", which, position, error=e)
        return bags

    async def _report(self, bags: list[AttributeBag], stream: _Stream) -> None:
        stats = self.stats
        stats.bags_reported += len(bags)
        try:
            await self._dispatcher.report(bags)
        except DispatchError as e:
            stats.report_errors += 1
            stream.log("envoy access log: report of %d bags failed: %s", len(bags), e)
        except Exception as e:
            stats.report_errors += 1
            stream.log("envoy access log: report of %d bags failed", len(bags), error=e)


async def _until(messages: AsyncIterator[bytes], stopping: asyncio.Event) -> AsyncIterator[bytes]:
    """The stream's messages until the client closes it or the server starts stopping.

    Each wait races the next message against `stopping` (one task per message: a message is a batch of
    entries, flushed about once a second).
    """
    if stopping.is_set():
        return
    iterator = aiter(messages)
    stop = asyncio.ensure_future(stopping.wait())
    following: asyncio.Future[bytes] | None = None
    try:
        while True:
            following = asyncio.ensure_future(anext(iterator))
            await asyncio.wait((following, stop), return_when=asyncio.FIRST_COMPLETED)
            if not following.done():
                return
            try:
                message = following.result()
            except StopAsyncIteration:
                return
            yield message
    finally:
        stop.cancel()
        # The read may have finished (the client's end included) while this handler was cancelled:
        # retrieve its outcome, or asyncio logs "exception was never retrieved".
        if following is not None:
            if not following.done():
                following.cancel()
            elif not following.cancelled():
                following.exception()


def add_to_server(server: grpc.aio.Server, context: FrontEndContext) -> str:
    """Serve StreamAccessLogs on `server` through `context.dispatcher`; counters go on context.registry."""
    stats = AccessLogStats()
    context.registry.register(AccessLogCollector(stats))
    clock = context.runtime.clock if context.runtime is not None else time.time_ns
    service = AccessLogService(
        context.dispatcher, stats, context.stopping, context.access_log_streams, clock, context.stats
    )
    service.add_to_server(server)
    return SERVICE_NAME
