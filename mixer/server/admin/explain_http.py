"""The explain routes of the admin page: `POST /debug/explain` (JSON in, JSON out, for scripts and
`mixerd check --explain`) and `POST /explain` (the page's form, answered with the page and the result).

Explaining changes nothing, but it does call check handlers, so both routes refuse what a page of
another site could send: the JSON route takes only `Content-Type: application/json` (which a browser
sends across sites only after a CORS preflight this page never allows), and the form route refuses a
request a browser says comes from another site (`same_origin`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .context import AdminContext
from .explain import explain_in_thread
from .explain_request import KINDS, MIXER_CHECK, BadRequest, parse_body

JSON_PATH = "/debug/explain"
PAGE_PATH = "/explain"


def status_line(code: int) -> str:
    return f"{code} {HTTPStatus(code).phrase}"


def _body(environ: dict[str, Any]) -> bytes:
    return bytes(environ["wsgi.input"].read())


def _media_type(environ: dict[str, Any]) -> str:
    return str(environ.get("CONTENT_TYPE", "")).partition(";")[0].strip().lower()


def explain_json(context: AdminContext, environ: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """`POST /debug/explain`: (HTTP status, answer)."""
    if _media_type(environ) != "application/json":
        return 415, {"error": "send the request as JSON, with Content-Type: application/json"}
    try:
        body = parse_body(_body(environ))
    except BadRequest as e:
        return 400, {"error": str(e)}
    return explain_in_thread(context, body)


@dataclass(frozen=True)
class Form:
    """What the form held (shown again above the result)."""

    kind: str = MIXER_CHECK
    request: str = ""
    quotas: str = ""


def same_origin(environ: dict[str, Any]) -> bool:
    """Whether a POST comes from this page (or from no page at all: curl, a script).

    Browsers say where a request comes from in `Sec-Fetch-Site`; older ones only in `Origin`, which
    under this page's `Referrer-Policy: no-referrer` is `null` even for the page itself, so `null` is
    taken only where `Sec-Fetch-Site` is sent and says same-origin."""
    site = environ.get("HTTP_SEC_FETCH_SITE")
    if site is not None:
        return site in ("same-origin", "none")
    origin = environ.get("HTTP_ORIGIN")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == str(environ.get("HTTP_HOST", "")).lower()


def explain_form(context: AdminContext, environ: dict[str, Any]) -> tuple[int, Form, dict[str, Any]]:
    """`POST /explain` (a urlencoded form): (HTTP status, the form as sent, the answer)."""
    fields = parse_qs(_body(environ).decode("utf-8", "replace"), keep_blank_values=True)
    form = Form(
        *(
            fields.get(name, [default])[0]
            for name, default in (("kind", MIXER_CHECK), ("request", ""), ("quotas", ""))
        )
    )
    if form.kind not in KINDS:
        return 400, form, {"error": f"kind: expected one of {', '.join(KINDS)}"}
    try:
        body: dict[str, Any] = {form.kind: _json_field("request", form.request or "{}")}
        if form.kind == MIXER_CHECK and form.quotas.strip():
            body["quotas"] = _json_field("quotas", form.quotas)
    except BadRequest as e:
        return 400, form, {"error": str(e)}
    status, answer = explain_in_thread(context, body)
    return status, form, answer


def _json_field(name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise BadRequest(f"{name}: not JSON: {e}") from None
