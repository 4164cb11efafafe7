"""Assembling mixerd's servers: the grpc.aio server (Mixer API, health, reflection) and monitoring HTTP.

`start(settings)` binds and starts everything and returns a `RunningServer` with the real ports; `mixerd
serve` and the test fixtures both use it. Once every server listens, `RunningServer.ready_lines()` gives
the lines `mixerd serve` prints to stdout (tools and benchmarks parse them):

    mixerd: serving istio.mixer.v1.Mixer, envoy.service.auth.v3.Authorization, ... on <host>:<port>
    mixerd: monitoring on http://<host>:<port>
    mixerd: admin on http://<host>:<port>

The first names every API served on the gRPC port, Mixer's first, then Envoy's (ext_authz, rate limit,
access log), comma-separated. The third is the admin page (admin/, docs/admin.md), on its own address
(`admin_address`); it is left out when `admin_port` is -1. `<host>` is the bind address as given (IPv6
in brackets) and `<port>` the bound port, also when 0 was asked for. Parse them with `READY_PATTERN`,
whose groups are (what, host, port); `served_services()` splits the first line's "what" into the
service names.

TLS leaves the gRPC line as it is and makes the monitoring one `https://` (the pattern takes both); how
each port is secured is logged to stderr (tls.py: certificates re-read when their files change).

Shutdown (`RunningServer.stop`): health turns NOT_SERVING and /readyz 503, the gRPC server stops taking
calls and gives in-flight ones `grace` seconds, then the monitoring and admin servers close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ..bundled import rules_folder
from ..config import ConfigRejected
from ..dispatch import Dispatcher
from ..plugins import PluginError, load_adapters
from ..runtime import Runtime, RuntimeCollector, RuntimeDispatcher
from ..runtime.offload import run_detached
from ..settings import Settings
from .admin import AdminApp, AdminContext, AdminServer
from .admission import Admission, attach
from .decisions import check_settings as check_decision_log
from .decisions import from_settings as decision_log
from .envoy import FrontEndContext, add_envoy_services
from .mixer_api import SERVICE_NAME, MixerApi
from .monitoring import MonitoringApp, MonitoringServer
from .reflection_pool import reflection_pool
from .stats import Stats, make_registry
from .tls import ReloadingTls, TlsError, grpc_credentials
from .tls import from_settings as tls_from_settings

#: Matches any ready line; groups: "serving <service>, <service>, ...", "monitoring" or "admin", host, port.
READY_PATTERN = re.compile(
    r"^mixerd: (serving \S+(?:, \S+)*|monitoring|admin) on (?:https?://)?(\[[^\]]+\]|[^\s:]+):(\d+)$"
)


def served_services(what: str) -> list[str]:
    """The service names of a ready line's "serving A, B, ..." group ([] for the other lines)."""
    prefix = "serving "
    return what.removeprefix(prefix).split(", ") if what.startswith(prefix) else []


_HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


class StartError(Exception):
    """The server cannot start; `exit_code` is what `mixerd serve` exits with."""

    exit_code = 1


class ConfigError(StartError):
    """The settings point at something unusable (a --config folder that does not exist)."""

    exit_code = 2


class InvalidConfig(StartError):
    """The config folder (or an adapter plugin) is invalid; the message lists every problem."""


def host_port(host: str, port: int) -> str:
    """`host:port`, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


@dataclass
class RunningServer:
    """A started mixerd: the bound ports, its counters, and `stop`."""

    settings: Settings
    port: int
    monitoring_port: int
    stats: Stats
    dispatcher: Dispatcher
    runtime: Runtime | None
    #: The APIs served on the gRPC port (Mixer's, then Envoy's), by full service name.
    services: tuple[str, ...]
    _grpc: grpc.aio.Server = field(repr=False)
    _health: health.aio.HealthServicer = field(repr=False)
    _monitoring_app: MonitoringApp = field(repr=False)
    _monitoring: MonitoringServer = field(repr=False)
    _admin: AdminServer | None = field(default=None, repr=False)
    _watcher: asyncio.Task[None] | None = field(default=None, repr=False)
    _retrier: asyncio.Task[None] | None = field(default=None, repr=False)
    _admission: Admission | None = field(default=None, repr=False)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list, repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def host(self) -> str:
        return self.settings.address

    @property
    def address(self) -> str:
        """Where the gRPC server listens, as `host:port`."""
        return host_port(self.host, self.port)

    @property
    def monitoring_url(self) -> str:
        return f"{self._monitoring.scheme}://{host_port(self.host, self.monitoring_port)}"

    @property
    def admin_port(self) -> int | None:
        """The admin page's bound port; None when it is off (admin_port -1)."""
        return self._admin.port if self._admin is not None else None

    @property
    def admin_url(self) -> str | None:
        if self._admin is None:
            return None
        return f"{self._admin.scheme}://{host_port(self.settings.admin_address, self._admin.port)}"

    def ready_lines(self) -> list[str]:
        """The lines `mixerd serve` prints once serving (format in the module docstring)."""
        lines = [
            f"mixerd: serving {', '.join(self.services)} on {self.address}",
            f"mixerd: monitoring on {self.monitoring_url}",
        ]
        if self.admin_url is not None:
            lines.append(f"mixerd: admin on {self.admin_url}")
        return lines

    async def stop(self, grace: float | None = None) -> None:
        """Stop serving; in-flight calls get `grace` seconds (default settings.shutdown_grace). Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._monitoring_app.ready = False
        for task in (self._watcher, self._retrier):
            if task is not None:
                task.cancel()
                # Wait for it: a reload or retry cut short must not race runtime.close() below.
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._health.enter_graceful_shutdown()
        self._stopping.set()  # Envoy's access-log streams end now (they would hold the whole grace)
        if self._admission is not None:
            await self._admission.close()  # its probes must not hold the grace either
        await self._grpc.stop(self.settings.shutdown_grace if grace is None else grace)
        for close in self._closers:  # the Envoy services' background work (statsd sends)
            await close()
        if self.runtime is not None:
            await self.runtime.close()
        # shutdown() waits for the serving thread's next poll; keep the event loop free meanwhile.
        await asyncio.to_thread(self._monitoring.stop)
        if self._admin is not None:
            await asyncio.to_thread(self._admin.stop)

    async def wait_for_termination(self) -> None:
        await self._grpc.wait_for_termination()


def _grpc_options(settings: Settings) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", settings.max_message_size),
        ("grpc.max_send_message_length", settings.max_message_size),
        # HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: what one connection can hold open (each call up to
        # max_message_size, each access-log stream with its state); grpc's default is unlimited.
        ("grpc.max_concurrent_streams", settings.max_concurrent_streams),
        # grpc sets SO_REUSEPORT by default, so a second server on a busy port would silently share it;
        # refuse instead. (Several workers sharing one port on purpose will turn this back on.)
        ("grpc.so_reuseport", 0),
    ]


def _check_config(settings: Settings) -> None:
    if settings.config is not None and not os.path.isdir(settings.config):
        raise ConfigError(f"--config {settings.config}: no such folder")
    if settings.ratelimit_config is not None and not os.path.isdir(settings.ratelimit_config):
        raise ConfigError(f"--ratelimit-config {settings.ratelimit_config}: no such folder")


def _load_tls(settings: Settings) -> tuple[ReloadingTls | None, ReloadingTls | None]:
    try:
        return tls_from_settings(settings)
    except TlsError as e:
        raise ConfigError(str(e)) from None


def _log_tls(grpc_at: str, grpc_tls: ReloadingTls | None, monitoring_tls: ReloadingTls | None) -> None:
    # The ready lines keep their format (tools parse them); how each port is secured is logged here.
    for port, tls in ((f"gRPC on {grpc_at}", grpc_tls), ("monitoring", monitoring_tls)):
        if tls is not None:
            logging.getLogger(__name__).info("%s: %s", port, tls.describe())


def _admin_server(settings: Settings, context: AdminContext) -> AdminServer | None:
    """The admin page's server, bound but not started; None when it is off (admin_port -1)."""
    if settings.admin_port < 0:
        return None
    return AdminServer(AdminApp(context), settings.admin_address, settings.admin_port)


def _rate_limit_handler(runtime: Runtime | None) -> Callable[[str], str]:
    """The FQN of the handler counting a rate limit domain in the config in force (for decision logs)."""

    def handler(domain: str) -> str:
        route = runtime.table.rate_limits.get(domain) if runtime is not None else None
        return route.handler.fqn if route is not None else ""

    return handler


async def _start_runtime(settings: Settings) -> Runtime:
    """The rule engine with the config in force: --config, or the embedded default rules."""
    try:
        adapters = load_adapters()
    except PluginError as e:
        raise InvalidConfig(str(e)) from None
    folder = settings.config if settings.config is not None else rules_folder()
    runtime = Runtime(
        adapters, folder=folder, default_namespace=settings.config_default_namespace, settings=settings
    )
    await _load(runtime)
    return runtime


async def _load(runtime: Runtime) -> None:
    """Put the runtime's folder in force, unless some config already is; InvalidConfig when rejected."""
    if runtime.generation > 0:
        return
    try:
        snapshot = await run_detached(runtime.compile)  # off the loop, and never waited for at exit
    except ConfigRejected as e:
        extra = runtime.settings.ratelimit_config
        where = f"{runtime.folder} and {extra}" if extra is not None else str(runtime.folder)
        raise InvalidConfig(f"{where}: {e}") from None
    await runtime.apply(snapshot)


async def start(
    settings: Settings, dispatcher: Dispatcher | None = None, *, runtime: Runtime | None = None
) -> RunningServer:
    """Bind and start the gRPC and monitoring servers; StartError (or a subclass) when that fails.

    Must be awaited on the event loop that will run the server. Without a `dispatcher` the rule engine
    runs the config folder (watched for changes) or the embedded default rules.

    `runtime` hands the server a Runtime built by the caller (for instance with adapters of its own,
    or an injected clock): the server loads its folder if no config is in force yet, dispatches to it
    (unless a `dispatcher` is given too), exports its metrics, watches its folder when
    settings.config_poll_interval > 0, and closes it on stop, exactly as with a Runtime of its own. The
    runtime takes `settings` as its own (handlers built from then on see them as Env.settings).
    """
    _check_config(settings)
    try:
        check_decision_log(settings)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    grpc_tls, monitoring_tls = _load_tls(settings)
    stats = Stats()
    registry = make_registry(stats)
    watch = runtime is not None or settings.config is not None or settings.ratelimit_config is not None
    if runtime is not None:
        runtime.settings = settings
        await _load(runtime)
    elif dispatcher is None:
        runtime = await _start_runtime(settings)
    if runtime is not None:
        registry.register(RuntimeCollector(runtime.stats, lambda: runtime.table.handlers))
        if dispatcher is None:
            dispatcher = RuntimeDispatcher(runtime, runtime.stats, settings.adapter_timeout)
    assert dispatcher is not None
    monitoring_app = MonitoringApp(registry)
    try:
        monitoring = MonitoringServer(
            monitoring_app,
            settings.address,
            settings.monitoring_port,
            tls=monitoring_tls.context if monitoring_tls is not None else None,
        )
    except OSError as e:
        if runtime is not None:
            await runtime.close()
        where = host_port(settings.address, settings.monitoring_port)
        raise StartError(f"cannot listen for monitoring on {where}: {e}") from None
    admin_context = AdminContext(runtime, settings, loop=asyncio.get_running_loop())
    try:
        admin = _admin_server(settings, admin_context)
    except OSError as e:
        monitoring.stop()
        if runtime is not None:
            await runtime.close()
        where = host_port(settings.admin_address, settings.admin_port)
        raise StartError(
            f"cannot listen for the admin page on {where}: {e} "
            "(--admin-port 0 picks a free port, -1 turns the page off)"
        ) from None

    server = grpc.aio.server(options=_grpc_options(settings))
    admission = None
    if settings.shed_latency > 0:
        admission = Admission(settings.shed_latency)
        attach(server, admission)  # every front-end below registers behind it (raw_handlers.py)
        registry.register(admission.collector())
    # A Report may not carry more attribute values than a message of the largest size could carry
    # without DELTA_ENCODING (each value is at least 4 bytes on the wire).
    decisions = decision_log(settings, dispatcher, registry, _rate_limit_handler(runtime))
    MixerApi(
        dispatcher, stats, max_report_values=settings.max_message_size // 4, decisions=decisions
    ).add_to_server(server)
    front_end = FrontEndContext(dispatcher, runtime, registry, settings, decisions=decisions, stats=stats)
    if decisions.writer is not None:  # started with the server below; closed after its last call
        front_end.closers.append(decisions.writer.aclose)
    envoy_services = add_envoy_services(server, front_end)
    admin_context.streams = front_end.access_log_streams
    admin_context.decisions = decisions.writer
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    served = (SERVICE_NAME, *envoy_services, _HEALTH_SERVICE, reflection.SERVICE_NAME)
    # A pool of its own, which describes Envoy's services under Envoy's names (reflection_pool.py).
    reflection.enable_server_reflection(served, server, pool=reflection_pool(served))
    if admission is not None:
        admission.listen(server)
    where = host_port(settings.address, settings.port)
    try:
        if grpc_tls is not None:
            port = server.add_secure_port(where, grpc_credentials(grpc_tls))
        else:
            port = server.add_insecure_port(where)
    except RuntimeError as e:  # grpc raises RuntimeError("Failed to bind ...") for a busy or bad address
        port, reason = 0, str(e)
    else:
        reason = "address in use or not available"
    if not port:
        monitoring.stop()
        for close in front_end.closers:
            await close()
        if admin is not None:
            admin.stop()
        if admission is not None:
            await admission.close()
        if runtime is not None:
            await runtime.close()
        raise StartError(f"cannot listen for gRPC on {where}: {reason}")

    if decisions.writer is not None:
        decisions.writer.start()
    await server.start()
    if admission is not None:
        await admission.start()
    monitoring.start()
    admin_context.grpc_address = host_port(settings.address, port)
    admin_context.started_at = admin_context.clock()
    if admin is not None:
        admin.start()
    _log_tls(host_port(settings.address, port), grpc_tls, monitoring_tls)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    monitoring_app.ready = True
    watcher = None
    if runtime is not None and watch and runtime.folder is not None and settings.config_poll_interval > 0:
        watcher = asyncio.get_running_loop().create_task(runtime.watch(settings.config_poll_interval))
    retrier = None
    if runtime is not None and settings.handler_retry_interval > 0:
        retrier = asyncio.get_running_loop().create_task(
            runtime.keep_retrying(settings.handler_retry_interval, max(60.0, settings.handler_retry_interval))
        )
    return RunningServer(
        settings=settings,
        port=port,
        monitoring_port=monitoring.port,
        stats=stats,
        dispatcher=dispatcher,
        runtime=runtime,
        services=(SERVICE_NAME, *envoy_services),
        _grpc=server,
        _health=health_servicer,
        _monitoring_app=monitoring_app,
        _monitoring=monitoring,
        _admin=admin,
        _watcher=watcher,
        _retrier=retrier,
        _stopping=front_end.stopping,
        _closers=front_end.closers,
        _admission=admission,
    )
