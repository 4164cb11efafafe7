"""The admin WSGI app: `/` and `/<view>` as HTML, `/debug/<twin>` as JSON, `/debug/` lists the twins.

`POST /debug/explain` and the form's `POST /explain` explain a decision (explain_http.py); any other
POST gets 405.

Every answer says `Cache-Control: no-store` (it is the state now) and `X-Content-Type-Options: nosniff`;
HTML also gets a Content-Security-Policy that lets only the page's own style and script run.

While the page listens on a loopback address (the default), a request whose Host header names anything
but a loopback address or `localhost` is refused with 403: a web page the operator visits cannot reach
it through DNS rebinding (a name of the attacker's that turns into 127.0.0.1). Opened on another
address, any Host is served.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from .context import AdminContext
from .explain_http import JSON_PATH, PAGE_PATH, explain_form, explain_json, same_origin, status_line
from .html import el, iso
from .page import page
from .style import csp
from .views import VIEWS, Data, View
from .views.explain import render_result

_log = logging.getLogger(__name__)
_StartResponse = Callable[..., Any]
_COMMON = [
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
]


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address, IPv6 maybe in brackets) is this machine only."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The host of a Host header, without its port."""
    if header.startswith("["):
        return header[: header.find("]") + 1] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class AdminApp:
    """The admin page's WSGI application over `context` (see the module docstring)."""

    #: The HTTP methods its routes take (the server refuses others with 405; POST is for explain only).
    methods: tuple[str, ...] = ("GET", "HEAD", "POST")

    def __init__(self, context: AdminContext, views: tuple[View, ...] = VIEWS) -> None:
        self.context = context
        self.views = views
        self._by_slug = {v.slug: v for v in views}
        self._twins = {t.name: t for v in views for t in v.twins}
        self._local_only = is_loopback(context.settings.admin_address)
        self._csp = csp()

    def __call__(self, environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
        if self._local_only and not is_loopback(_host_name(environ.get("HTTP_HOST", "localhost"))):
            return self._text(start_response, "403 Forbidden", "this admin page answers only to localhost\n")
        path = environ.get("PATH_INFO", "/")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == JSON_PATH or (path == PAGE_PATH and method == "POST"):
            return self._explain(path, method, environ, start_response)
        if method == "POST":
            return self._not_allowed(start_response, "GET, HEAD")
        if path.startswith("/debug/"):
            name = path.removeprefix("/debug/").strip("/")
            if not name:
                return self._json(start_response, "200 OK", self._index())
            twin = self._twins.get(name)
            if twin is None:
                return self._json(
                    start_response, "404 Not Found", {"error": f"no twin {name!r}"} | self._index()
                )
            return self._json(start_response, "200 OK", twin.data(self.context))
        slug = path.strip("/") or self.views[0].slug
        view = self._by_slug.get(slug)
        if view is None:
            body = el("p", "No such view. Pick one above.", class_="empty")
            return self._html(
                start_response, "404 Not Found", page(None, self.views, body, **self._frame("Not found"))
            )
        data = {t.name: t.data(self.context) for t in view.twins}
        now = datetime.fromtimestamp(self.context.clock() / 1e9, UTC)
        return self._html(
            start_response,
            "200 OK",
            page(view, self.views, view.render(data, now), **self._frame(view.title, now)),
        )

    def _explain(
        self, path: str, method: str, environ: dict[str, Any], start_response: _StartResponse
    ) -> Iterable[bytes]:
        if method != "POST":
            return self._not_allowed(start_response, "POST")
        if path == JSON_PATH:
            code, answer = explain_json(self.context, environ)
            return self._json(start_response, status_line(code), answer)
        if not same_origin(environ):
            return self._text(
                start_response, "403 Forbidden", "explain forms are taken only from this page\n"
            )
        code, form, answer = explain_form(self.context, environ)
        view = self._by_slug[PAGE_PATH.strip("/")]
        body = render_result(form, answer)
        return self._html(
            start_response, status_line(code), page(view, self.views, body, **self._frame(view.title))
        )

    def _not_allowed(self, start_response: _StartResponse, allowed: str) -> list[bytes]:
        start_response(
            "405 Method Not Allowed",
            [("Allow", allowed), ("Content-Type", "text/plain; charset=utf-8"), *_COMMON],
        )
        return [f"method not allowed; use {allowed}\n".encode()]

    def _frame(self, title: str, now: datetime | None = None) -> dict[str, Any]:
        runtime = self.context.runtime
        settings = self.context.settings
        return {
            "title": title,
            "now": now or datetime.fromtimestamp(self.context.clock() / 1e9, UTC),
            "facts": {
                "generation": runtime.generation if runtime is not None else 0,
                "started_at": iso(self.context.started_at),
                "pid": os.getpid(),
                "where": f"gRPC on {self.context.grpc_address or settings.port}",
            },
        }

    def _index(self) -> Data:
        return {
            "twins": [
                {"path": f"/debug/{t.name}", "view": f"/{v.slug}", "description": t.description}
                for v in self.views
                for t in v.twins
            ],
            "explain": {
                "path": JSON_PATH,
                "method": "POST",
                "view": PAGE_PATH,
                "description": "explain a Check, ext_authz or rate limit decision, as a dry run",
            },
        }

    def _html(self, start_response: _StartResponse, status: str, text: str) -> list[bytes]:
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Security-Policy", self._csp),
            ("X-Frame-Options", "DENY"),
            *_COMMON,
        ]
        start_response(status, headers)
        return [text.encode("utf-8", "replace")]  # a lone surrogate from YAML's "\ud800" becomes "?"

    def _json(self, start_response: _StartResponse, status: str, data: Mapping[str, Any]) -> list[bytes]:
        start_response(status, [("Content-Type", "application/json"), *_COMMON])
        return [json.dumps(data, indent=2, default=str).encode() + b"\n"]

    def _text(self, start_response: _StartResponse, status: str, text: str) -> list[bytes]:
        start_response(status, [("Content-Type", "text/plain; charset=utf-8"), *_COMMON])
        return [text.encode()]
