"""The admin page: a local introspection app on its own port (ControlZ's 9876 by default; docs/admin.md).

Server-rendered HTML views of the config in force, the routing table, adapters and handlers, quotas,
rate limit configs and Envoy's access-log streams, each with a JSON twin under `/debug/` for scripts;
and a decision explained as a dry run, `POST /debug/explain` (explain.py).
The views are a registry (views/__init__.py); the server is http_server.BackgroundHttpServer (off the
gRPC event loop, bounded threads, header timeouts).
"""

from __future__ import annotations

from ...http_server import BackgroundHttpServer
from .app import AdminApp
from .context import AdminContext

__all__ = ["AdminApp", "AdminContext", "AdminServer"]


class AdminServer(BackgroundHttpServer):
    """The admin page (AdminApp) on its own thread, taking the methods its routes take."""

    def __init__(self, app: AdminApp, host: str, port: int) -> None:
        super().__init__(app, host, port, name="mixerd-admin", methods=app.methods)
