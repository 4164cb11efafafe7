"""The monitoring HTTP side: /metrics, /version, /healthz, /readyz.

| path | answer |
|---|---|
| `/metrics` | mixerd's own metrics (stats.py), every one listed in docs/metrics.md, and process metrics |
| `/version` | `{"version": "<mixerd version>"}` (Mixer's liveness probe path) |
| `/healthz` | 200 `ok` while the process runs |
| `/readyz` | 200 `ok` while the gRPC server serves; 503 `not serving` before start and during shutdown |

It runs on http_server.BackgroundHttpServer: GET and HEAD only, a deadline on each request's headers,
connections on an event loop of its own thread and the app on a small pool, so neither a slow scrape nor
many idle clients touch the gRPC event loop or pile up threads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .. import __version__
from ..http_server import BackgroundHttpServer, TlsContext

_StartResponse = Callable[..., Any]
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


class MonitoringServer(BackgroundHttpServer):
    """The monitoring HTTP server (MonitoringApp) on its own thread; HTTPS when given `tls` (a context
    for each new connection, see tls.ReloadingTls.context)."""

    def __init__(self, app: MonitoringApp, host: str, port: int, *, tls: TlsContext | None = None) -> None:
        super().__init__(app, host, port, name="mixerd-monitoring", tls=tls)
