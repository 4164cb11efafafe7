"""`mixerd check --explain`: the flags' Check sent to a server's admin page, `POST /debug/explain`, as JSON.

The flags type each value (mixerd.client.attrs); JSON carries it the way the admin page reads it
(docs/admin.md): timestamps RFC 3339, durations Go text, IP addresses (4 or 16 bytes) as text, string
maps as objects. Other bytes have no attribute type to be explained as, so they are a usage error.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from ..attribute import Duration, Timestamp
from ..attribute.values import ip_text
from .attrs import AttributeFlagError

#: Where the admin page listens unless told (mixerd serve's default).
DEFAULT_ADMIN = "localhost:9876"
PATH = "/debug/explain"


class ExplainFailed(Exception):
    """The admin page could not be asked, or did not explain. `usage` is True when the request itself was
    refused (400: an attribute the server does not know, a value of the wrong type)."""

    def __init__(self, message: str, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


def json_value(name: str, value: Any) -> Any:
    """A flag's typed value as the admin page reads it (see the module docstring)."""
    if isinstance(value, Timestamp):
        return value.isoformat()
    if isinstance(value, Duration):
        return str(value)
    if isinstance(value, bytes):
        if len(value) in (4, 16):
            return ip_text(value)
        raise AttributeFlagError(f"{name}: bytes values cannot be explained (no attribute type holds them)")
    if isinstance(value, float) and not math.isfinite(value):
        raise AttributeFlagError(f"{name}: {value} cannot be sent as JSON")
    return value


def explain_body(
    values: Mapping[str, Any], quotas: Mapping[str, int], best_effort: bool, dedup_id: str | None
) -> dict[str, Any]:
    """The JSON body explaining a Check of `values` asking for `quotas`."""
    body: dict[str, Any] = {"attributes": {name: json_value(name, v) for name, v in values.items()}}
    if quotas:
        body["quotas"] = dict(quotas)
        body["best_effort"] = best_effort
    if dedup_id:
        body["dedup_id"] = dedup_id
    return body


def ask(admin: str, body: Mapping[str, Any], timeout: float) -> dict[str, Any]:
    """POST `body` to the admin page at `admin` (HOST:PORT, or a URL) and return its explanation."""
    base = admin if "://" in admin else f"http://{admin}"
    url = base.rstrip("/") + PATH
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return dict(json.load(answer))
    except urllib.error.HTTPError as e:
        with e:
            text = e.read().decode("utf-8", "replace")
        try:
            message = json.loads(text)["error"]
        except (ValueError, KeyError, TypeError):
            message = text.strip() or e.reason
        raise ExplainFailed(f"{url} answered {e.code}: {message}", usage=e.code == 400) from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ExplainFailed(
            f"cannot reach the admin page at {url}: {reason} (is `mixerd serve` running there? "
            "--admin HOST:PORT names another)"
        ) from None
