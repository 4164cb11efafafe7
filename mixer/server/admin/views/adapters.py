"""Adapters (built-in and plugins) and the handlers of the config in force: state, calls, delivery."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ....histogram import Histogram
from ..context import AdminContext, copied, handler_call
from ..html import Markup, anchor, badge, el, iso, table, when
from ..redact import redact
from . import Data, Twin, View

#: A handler's optional stats methods: the counters mixer/runtime/stats.py publishes on /metrics, and
#: the delivery queue's state now (mixerd.batching.BatchQueue.delivery_state).
STATS_METHODS = ("delivery_stats", "delivery_state", "span_counts", "generation_stats")


def adapters_data(ctx: AdminContext) -> Data:
    runtime = ctx.runtime
    if runtime is None:
        return {"adapters": []}
    in_use = Counter(h.config.adapter.name for h in runtime.table.handlers.values())
    origins = ctx.origins
    out = []
    for name, info in sorted(runtime.adapters.items()):
        origin = origins.get(name)
        out.append(
            {
                "name": name,
                "builtin": origin.builtin if origin is not None else False,
                "package": origin.distribution if origin is not None else "",
                "version": origin.version if origin is not None else "",
                "templates": list(info.templates),
                "rate_limits": info.rate_limits,
                "description": info.description,
                "handlers": in_use.get(name, 0),
            }
        )
    return {"adapters": out}


def handlers_data(ctx: AdminContext) -> Data:
    runtime = ctx.runtime
    if runtime is None:
        return {"handlers": []}
    table = runtime.table
    calls: dict[str, dict[str, dict[str, int]]] = {}
    for (handler, template, outcome), count in copied(runtime.stats.dispatches).items():
        calls.setdefault(handler, {}).setdefault(template, {})[outcome] = count
    durations: dict[str, dict[str, Data]] = {}
    for key, histogram in list(runtime.stats.handler_seconds.by_labels.items()):
        handler, template = key  # type: ignore[misc]
        durations.setdefault(handler, {})[template] = _duration(histogram)
    out = []
    for fqn, built in sorted(table.handlers.items()):
        by_template = calls.get(fqn, {})
        outcomes: Counter[str] = Counter()
        for counts in by_template.values():
            outcomes.update(counts)
        entry: Data = {
            "name": fqn,
            "adapter": built.config.adapter.name,
            "state": "available" if built.available else "unavailable",
            "failure": redact(built.failure),
            "closed": built.closed,
            "instances": {name: info.template for name, info in built.config.instances.items()},
            "rate_limits": built.config.rate_limits,
            "calls": by_template,
            "outcomes": dict(outcomes),
            "durations": durations.get(fqn, {}),
        }
        if built.handler is not None:
            for method in STATS_METHODS:
                stats, error = handler_call(built.handler, method)
                if stats is not None:
                    entry[method] = dict(stats)
                elif error:
                    entry[method] = {"error": error}
            state = entry.get("delivery_state")
            if state is not None and "last_error" in state:
                state["last_error"] = redact(str(state["last_error"]))
                state["last_error_at"] = iso(int(state.get("last_error_at") or 0))
        out.append(entry)
    return {"generation": table.generation, "handlers": out}


def _duration(histogram: Histogram) -> Data:
    """How long a handler's calls took (mixerd_adapter_dispatch_duration_seconds): their number, the mean,
    and the bucket bounds that half and 99% of them stayed within (None: past 10 s)."""
    count = histogram.count
    half, most = histogram.at_most(0.5), histogram.at_most(0.99)
    return {
        "calls": count,
        "mean_ms": round(histogram.sum / count * 1e3, 3) if count else None,
        "p50_ms_at_most": None if half is None else half * 1e3,
        "p99_ms_at_most": None if most is None else most * 1e3,
    }


def render(data: Mapping[str, Data], now: datetime) -> Markup:
    adapters = data["adapters"]["adapters"]
    handlers = data["handlers"]["handlers"]
    return el(
        "div",
        el("h2", "Handlers of the config in force"),
        table(
            ("handler", "state", "calls since start", "delivery", "instances"),
            (_handler(h, now) for h in handlers),
            empty="No handlers: no rule sends anything anywhere.",
            class_="filterable",
        ),
        el("h2", "Adapters"),
        table(
            ("adapter", "from", "templates", "handlers", "description"),
            (
                (
                    el("code", a["name"], class_="strong"),
                    _origin(a),
                    el("ul", [el("li", el("code", t)) for t in a["templates"]], class_="inline"),
                    a["handlers"] or el("span", "0", class_="dim"),
                    a["description"],
                )
                for a in adapters
            ),
            empty="No adapters.",
        ),
    )


def _origin(adapter: Data) -> Markup:
    if adapter["builtin"]:
        return badge("built-in", "dim")
    if not adapter["package"]:
        return badge("unknown", "warn")
    return el("span", badge("plugin", "warn"), " ", el("code", f"{adapter['package']} {adapter['version']}"))


def _handler(h: Data, now: datetime) -> tuple[Any, ...]:
    name = el("code", h["name"], class_="strong", id=anchor("handler", h["name"]))
    state = (
        badge("available", "ok")
        if h["state"] == "available"
        else el("div", badge("unavailable", "bad"), el("div", h["failure"], class_="why"))
    )
    return (
        (name, el("div", badge(h["adapter"], "dim"))),
        state,
        _calls(h),
        _delivery(h, now),
        el(
            "ul",
            [el("li", el("code", i), el("span", f" {t}", class_="dim")) for i, t in h["instances"].items()],
        ),
    )


def _calls(h: Data) -> Markup:
    outcomes = h["outcomes"]
    if not outcomes:
        return el("span", "none yet", class_="dim")
    parts = []
    for outcome, count in sorted(outcomes.items()):
        tone = "ok" if outcome == "ok" else "bad"
        parts.append(el("span", el("b", count), f" {outcome}", class_=f"count {tone}"))
    per_template = [
        el("li", el("code", t), ": ", ", ".join(f"{n} {o}" for o, n in sorted(c.items())))
        for t, c in sorted(h["calls"].items())
    ]
    timing = [
        el("li", el("code", t), f": {_ms(d['mean_ms'])} ms mean, 99% within {_ms(d['p99_ms_at_most'])} ms")
        for t, d in sorted(h.get("durations", {}).items())
        if d["calls"]
    ]
    return el(
        "div",
        parts,
        el("ul", per_template, class_="plain dim") if len(h["calls"]) > 1 else None,
        el("ul", timing, class_="plain dim") if timing else None,
    )


def _ms(value: float | None) -> str:
    return "over 10 000" if value is None else f"{value:g}"


_COUNTERS = (("delivery_stats", "delivered"), ("span_counts", "spans"), ("generation_stats", "lookups"))


def _delivery(h: Data, now: datetime) -> Markup:
    rows = []
    state = h.get("delivery_state")
    if state is not None and "error" not in state:
        depth, capacity = state.get("depth", 0), state.get("capacity", 0)
        rows.append(
            el(
                "div",
                el("span", "queue ", class_="dim"),
                el("meter", value=depth, max=capacity or 1, title=f"{depth} of {capacity}"),
                f" {depth} / {capacity}",
            )
        )
    for method, label in _COUNTERS:
        stats = h.get(method)
        if stats is None:
            continue
        if "error" in stats:
            rows.append(el("div", f"{label}: ", el("span", stats["error"], class_="bad")))
            continue
        items = [el("span", el("b", v), f" {k}", class_=_tone(k, v)) for k, v in stats.items()]
        rows.append(el("div", el("span", f"{label} ", class_="dim"), items))
    if state is not None and state.get("last_error"):
        rows.append(
            el(
                "div",
                el("span", "last error ", class_="dim"),
                when(state.get("last_error_at"), now),
                el("div", state["last_error"], class_="why"),
            )
        )
    return el("div", rows) if rows else el("span", "—", class_="dim")


def _tone(key: str, value: Any) -> str:
    alarming = key in ("dropped", "failed", "invalid", "sync_failures") and bool(value)
    return "count bad" if alarming else "count"


VIEW = View(
    "adapters",
    "Adapters & handlers",
    (
        Twin("adapters", adapters_data, "adapters (built-in and plugins): package, version, templates"),
        Twin("handlers", handlers_data, "handlers in force: state, failure, calls by outcome, delivery"),
    ),
    render,
)
