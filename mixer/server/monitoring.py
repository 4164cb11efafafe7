"""The monitoring HTTP side: /metrics, /version, /healthz, /readyz.

| path | answer |
|---|---|
| `/metrics` | Prometheus text of mixerd's own metrics (stats.py) and process metrics |
| `/version` | `{"version": "<mixerd version>"}` (Mixer's liveness probe path) |
| `/healthz` | 200 `ok` while the process runs |
| `/readyz` | 200 `ok` while the gRPC server serves; 503 `not serving` before start and during shutdown |

It runs on the standard library's wsgiref with one thread per request, in a daemon thread, so a slow
scrape never touches the gRPC event loop.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .. import __version__

_StartResponse = Callable[..., Any]
_WsgiApp = Callable[[dict[str, Any], _StartResponse], Iterable[bytes]]
_TEXT = [("Content-Type", "text/plain; charset=utf-8")]


class MonitoringApp:
    """The WSGI application; `ready` is read on every /readyz (a plain bool, set by the server)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self.ready = False

    def __call__(self, environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [generate_latest(self._registry)]
        if path == "/version":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps({"version": __version__}).encode()]
        if path == "/healthz":
            start_response("200 OK", _TEXT)
            return [b"ok\n"]
        if path == "/readyz":
            if self.ready:
                start_response("200 OK", _TEXT)
                return [b"ok\n"]
            start_response("503 Service Unavailable", _TEXT)
            return [b"not serving\n"]
        start_response("404 Not Found", _TEXT)
        return [b"not found; try /metrics, /version, /healthz or /readyz\n"]


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a stuck scrape must not hold up exit


class _IPv6ThreadingServer(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes every few seconds would flood logs
        pass


class BackgroundHttpServer:
    """A WSGI app served by wsgiref on its own daemon thread, one thread per request; `port` is the bound
    port (useful when asked for 0). Used for the monitoring port and by the prometheus adapter."""

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        host: str,
        port: int,
        *,
        name: str,
        poll_interval: float = 0.1,
    ) -> None:
        server_class = _IPv6ThreadingServer if ":" in host else _ThreadingServer
        self._httpd = make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": poll_interval},
            name=name,
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket (blocks for up to one poll interval)."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()


class MonitoringServer(BackgroundHttpServer):
    """The monitoring HTTP server (MonitoringApp) on its daemon thread."""

    def __init__(self, app: MonitoringApp, host: str, port: int) -> None:
        super().__init__(app, host, port, name="mixerd-monitoring")
