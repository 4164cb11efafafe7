"""Quotas: the busiest counters of in-memory quota handlers, and the backends of shared ones.

Any handler may take part through two optional read-only methods: `top_counters(limit)` (memquota:
its counters most used now) and `backend_state()` (redisquota: connected or not, address, fail policy,
last error).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ....adapter import BACKEND_STATE, TOP_COUNTERS
from ..context import AdminContext
from ..html import Markup, anchor, badge, el, table
from ..redact import redact
from . import Data, Twin, View

#: Counters listed per handler (and per kind: quotas, rate limits).
TOP = 20


def quotas_data(ctx: AdminContext) -> Data:
    runtime = ctx.runtime
    counters: list[Data] = []
    backends: list[Data] = []
    if runtime is None:
        return {"counters": counters, "backends": backends}
    for fqn, built in sorted(runtime.table.handlers.items()):
        if built.handler is None:
            continue
        base = {"handler": fqn, "adapter": built.config.adapter.name}
        top = getattr(built.handler, TOP_COUNTERS, None)
        if callable(top):
            try:
                counters.append(base | dict(top(TOP)))
            except Exception as e:  # one handler must not take the page down
                counters.append(base | {"error": f"{type(e).__name__}: {e}"})
        state = getattr(built.handler, BACKEND_STATE, None)
        if callable(state):
            try:
                found = dict(state())
                found["last_error"] = redact(str(found.get("last_error", "")))
                found["address"] = redact(str(found.get("address", "")))
                backends.append(base | found)
            except Exception as e:
                backends.append(base | {"error": f"{type(e).__name__}: {e}"})
    return {"top": TOP, "counters": counters, "backends": backends}


def render(data: Mapping[str, Data], now: datetime) -> Markup:
    quotas = data["quotas"]
    parts: list[Any] = [el("h2", "Shared backends")]
    parts.append(
        table(
            ("handler", "backend", "fail policy", "last error", "counters"),
            (_backend(b) for b in quotas["backends"]),
            empty="No handler of the config in force counts in a shared backend.",
        )
    )
    parts.append(el("h2", "Busiest counters in memory"))
    if not quotas["counters"]:
        parts.append(el("p", "No handler of the config in force counts in memory.", class_="empty"))
    for c in quotas["counters"]:
        parts.append(_counters(c, quotas["top"]))
    return el("div", parts)


def _handler(entry: Data) -> Markup:
    link = el(
        "a",
        el("code", entry["handler"], class_="strong"),
        href=f"/adapters#{anchor('handler', entry['handler'])}",
    )
    return el("span", link, " ", badge(entry["adapter"], "dim"))


def _backend(b: Data) -> tuple[Any, ...]:
    if "error" in b:
        return (_handler(b), el("span", b["error"], class_="bad"), "", "", "")
    state = badge("connected", "ok") if b.get("connected") else badge("not connected", "bad")
    stats = b.get("stats") or {}
    return (
        _handler(b),
        (state, " ", el("code", b.get("address", ""))),
        el("code", b.get("fail_policy", "")),
        el("span", b["last_error"], class_="why")
        if b.get("last_error")
        else el("span", "none", class_="dim"),
        el("span", [el("span", el("b", v), f" {k}", class_="count") for k, v in stats.items()]),
    )


def _counters(c: Data, top: int) -> Markup:
    if "error" in c:
        return el("section", el("h3", _handler(c)), el("p", c["error"], class_="bad"))
    quota_rows = [
        (
            el("code", q["instance"]),
            _dims(q["dimensions"]),
            _use(q["used"], q["max_amount"]),
            el("code", q["valid_duration"] or "allocation"),
        )
        for q in c.get("quota", [])
    ]
    rate_rows = [
        (el("code", r["domain"]), _pairs(r["entries"]), el("b", r["used"]), el("code", r["window"]))
        for r in c.get("rate_limit", [])
    ]
    return el(
        "section",
        el(
            "h3",
            _handler(c),
            el(
                "span",
                f" {c.get('quota_counters', 0)} quota counters, {c.get('rate_limit_counters', 0)} rate limit "
                f"counters (the {top} most used of each below)",
                class_="dim",
            ),
        ),
        table(
            ("instance", "dimensions", "used", "window"),
            quota_rows,
            empty="No quota counter holds anything now.",
        ),
        table(
            ("domain", "descriptor entries", "hits in window", "window"),
            rate_rows,
            empty="No rate limit counter holds anything now.",
        )
        if c.get("rate_limit_counters")
        else None,
    )


def _use(used: int, max_amount: int) -> Markup:
    tone = "bad" if used >= max_amount else ""
    return el(
        "span",
        el("meter", value=used, max=max(max_amount, 1), high=max(max_amount, 1) * 0.8),
        " ",
        el("b", used, class_=tone or None),
        f" / {max_amount}",
    )


def _dims(dims: Mapping[str, str]) -> Markup:
    if not dims:
        return el("span", "none", class_="dim")
    return el("ul", [el("li", el("code", f"{k}={v}")) for k, v in dims.items()], class_="inline")


def _pairs(pairs: list[list[str]]) -> Markup:
    return el("ul", [el("li", el("code", f"{k}={v}")) for k, v in pairs], class_="inline")


VIEW = View(
    "quotas",
    "Quotas",
    (Twin("quotas", quotas_data, "busiest in-memory quota counters; shared quota backends' state"),),
    render,
)
