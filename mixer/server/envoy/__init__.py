"""The APIs today's Envoy calls, served on mixerd's gRPC port beside istio.mixer.v1.Mixer.

- `authz`: envoy.service.auth.v3.Authorization/Check (ext_authz), with a verdict cache;
- `ratelimit`: envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit (RLS);
- `accesslog`: envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs (ALS).

Each turns Envoy's message into an attribute bag and runs the same dispatch as Mixer's Check or Report,
so one rule set serves both kinds of proxy. The message classes are mixerd's own (`mixerd.api.envoy`,
generated from protos/mixerd/envoy: Envoy's wire, in a package of mixerd's own), and the services are
registered under Envoy's names (`raw_handlers.ENVOY_*`), which Envoy calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from prometheus_client import CollectorRegistry

from ...dispatch import Dispatcher
from ...runtime import Runtime
from ...settings import Settings
from ..decisions import OFF, DecisionLog
from ..stats import Stats
from .accesslog_streams import StreamRegistry


@dataclass
class FrontEndContext:
    """What an Envoy-facing service needs from the server that hosts it."""

    dispatcher: Dispatcher
    runtime: Runtime | None
    registry: CollectorRegistry  # register self metrics here (a Collector of your own)
    settings: Settings
    #: Set when the server starts to stop: long-lived streams (Envoy's access logs) end then, so the
    #: proxy reconnects to another replica at once instead of holding shutdown for the whole grace.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    #: Called (and awaited) once the gRPC server has stopped: background work a service started.
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    #: Envoy's access-log streams open now (the admin page lists them).
    access_log_streams: StreamRegistry = field(default_factory=StreamRegistry)
    #: Where ext_authz and rate limit decisions are recorded (decision logs, debug lines).
    decisions: DecisionLog = OFF
    #: The server's own counters; each front-end times its calls into `stats.durations`.
    stats: Stats = field(default_factory=Stats)


def add_envoy_services(server: grpc.aio.Server, context: FrontEndContext) -> list[str]:
    """Register every Envoy-facing service on `server`; returns their full names (for reflection)."""
    from . import accesslog, authz, ratelimit

    names: list[str] = []
    for module in (authz, ratelimit, accesslog):
        name = module.add_to_server(server, context)
        if name is not None:
            names.append(name)
    return names
