"""The recent decisions: the last records the decision log wrote (docs/decision-logs.md), newest first,
exactly as written (so secrets are redacted as in the log). With the log off, how to turn it on."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..context import AdminContext
from ..html import Markup, badge, el, facts, table, when
from . import Data, Twin, View


def decisions_data(ctx: AdminContext) -> Data:
    settings = ctx.settings
    writer = ctx.decisions
    out: Data = {"decision_log": settings.decision_log, "sample": settings.decision_log_sample}
    if writer is None:
        return out | {"on": False, "written": 0, "dropped": 0, "not_shown": 0, "recent": []}
    recent: list[Any] = []
    for line in reversed(writer.recent.lines()):
        try:
            recent.append(json.loads(line))
        except ValueError:  # cannot happen for lines the writer made; be safe
            continue
    return out | {
        "on": True,
        "written": writer.written,
        "dropped": writer.dropped,
        "not_shown": writer.recent.too_large,
        "recent": recent,
    }


def _decided_by(record: Mapping[str, Any]) -> Markup:
    """The rules that held and the handlers that answered, one per line."""
    parts: list[Any] = []
    for rule in record.get("rules", ()):
        text = f"{rule['rule']} ({rule['step']})"
        parts.append(
            el("div", el("code", text), " ", badge("match error", "bad") if "error" in rule else None)
        )
    for call in record.get("handlers", ()):
        parts.append(el("div", "→ ", el("code", call.get("handler", "")), class_="dim"))
    for limit in record.get("rate_limits", ()):
        if limit.get("code") == "OVER_LIMIT":
            pairs = ", ".join(f"{e['key']}={e['value']}" for e in limit["descriptor"])
            parts.append(el("div", badge("over limit", "bad"), " ", el("code", pairs)))
    return el("div", *parts) if parts else el("span", "no rule applied", class_="dim")


def render(data: Mapping[str, Data], now: datetime) -> Markup:
    d = data["decisions"]
    if not d["on"]:
        return el(
            "div",
            el("p", "Decision logs are off, so no decision is recorded.", class_="empty"),
            el(
                "p",
                "Start mixerd with ",
                el("code", "--decision-log stdout"),
                " or ",
                el("code", "--decision-log /path/to/decisions.log"),
                " (a sample with ",
                el("code", "--decision-log-sample 0.1"),
                ") and the last decisions show here, as the log has them.",
            ),
        )
    summary = facts(
        (
            ("written to", el("code", d["decision_log"])),
            ("sample", d["sample"]),
            ("written", d["written"]),
            ("dropped (queue full)", d["dropped"]),
        )
    )
    return el(
        "div",
        summary,
        table(
            ("time", "api", "request id", "verdict", "message", "decided by", "ms"),
            (
                (
                    when(r["time"], now),
                    el("code", r["api"]),
                    el("code", r["request_id"]),
                    el(
                        "span",
                        badge(r["code"], "ok" if r["code"] == "OK" else "bad"),
                        " ",
                        badge("from the cache", "dim") if r.get("cached") else None,
                    ),
                    r.get("message", ""),
                    _decided_by(r),
                    r.get("duration_ms", ""),
                )
                for r in d["recent"]
            ),
            empty="No decision recorded yet.",
            class_="filterable",
        ),
        el("p", f"{d['not_shown']} records were too large to keep here (they are in the log).", class_="dim")
        if d["not_shown"]
        else None,
    )


VIEW = View(
    "decisions",
    "Decisions",
    (
        Twin(
            "decisions",
            decisions_data,
            "the last decisions the decision log wrote (newest first), as written; whether the log is on",
        ),
    ),
    render,
)
