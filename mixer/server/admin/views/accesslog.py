"""Envoy access-log streams open now: which proxy sends each, under which log name, since when, how much."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from ..context import AdminContext
from ..html import Markup, el, facts, iso, table, when
from . import Data, Twin, View

#: Streams listed (the oldest first); the count covers them all.
LISTED = 500


def accesslog_data(ctx: AdminContext) -> Data:
    registry = ctx.streams
    if registry is None:
        return {"serving": False, "open": 0, "opened": 0, "streams": []}
    streams = registry.streams()
    return {
        "serving": True,
        "open": len(streams),
        "opened": registry.opened,
        "listed": min(len(streams), LISTED),
        "streams": [
            {
                "peer": s.peer,
                "node_id": s.node_id,
                "cluster": s.cluster,
                "log_name": s.log_name,
                "since": iso(s.since),
                "messages": s.messages,
                "http_entries": s.http_entries,
                "tcp_entries": s.tcp_entries,
                "entries": s.entries,
            }
            for s in streams[:LISTED]
        ],
    }


def render(data: Mapping[str, Data], now: datetime) -> Markup:
    a = data["accesslog"]
    if not a["serving"]:
        return el("p", "This server does not serve Envoy's access log service.", class_="empty")
    summary = facts((("open now", el("span", a["open"], class_="big")), ("opened since start", a["opened"])))
    more = a["open"] - a["listed"]
    return el(
        "div",
        summary,
        table(
            ("peer", "node id", "cluster", "log name", "since", "messages", "entries (http / tcp)"),
            (
                (
                    el("code", s["peer"]),
                    el("code", s["node_id"] or "(not identified yet)", class_="strong"),
                    el("code", s["cluster"]),
                    el("code", s["log_name"]),
                    when(s["since"], now),
                    s["messages"],
                    el("span", el("b", s["entries"]), f" ({s['http_entries']} / {s['tcp_entries']})"),
                )
                for s in a["streams"]
            ),
            empty="No Envoy has an access-log stream open.",
            class_="filterable",
        ),
        el("p", f"… and {more} more (the oldest {a['listed']} are listed).", class_="dim")
        if more > 0
        else None,
    )


VIEW = View(
    "accesslog",
    "Access logs",
    (Twin("accesslog", accesslog_data, "Envoy access-log streams open now: peer, node, log name, entries"),),
    render,
)
