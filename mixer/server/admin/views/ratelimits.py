"""Rate limit configs in force (as envoyproxy/ratelimit's `/rlconfig`): each domain, its descriptor tree
with its limits, and the handler that counts them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ....adapter import RateLimitAlgorithm
from ....config.ratelimit_model import UNIT_NAMES, DescriptorConfig, DescriptorTable, LimitPolicy
from ..context import AdminContext
from ..html import Markup, anchor, badge, el
from . import Data, Twin, View


def ratelimits_data(ctx: AdminContext) -> Data:
    runtime = ctx.runtime
    if runtime is None:
        return {"domains": []}
    domains = []
    for name, route in sorted(runtime.table.rate_limits.items()):
        handler = route.handler
        domains.append(
            {
                "domain": name,
                "resource": route.domain.resource,
                "handler": handler.fqn,
                "adapter": handler.config.adapter.name,
                "available": handler.available and route.method is not None,
                "failure": handler.failure,
                "descriptors": _tree(route.domain.descriptors),
            }
        )
    return {"domains": domains}


def _tree(table: DescriptorTable) -> list[Data]:
    """A level's descriptors in lookup order: exact values, then wildcards, then any value."""
    nodes = [*table.exact.values()]
    for candidates in table.wildcards.values():
        nodes.extend(candidates)
    nodes.extend(table.any_value.values())
    return [_descriptor(d) for d in nodes]


def _descriptor(d: DescriptorConfig) -> Data:
    return {
        "key": d.key,
        "value": d.value,
        "wildcard": d.pattern is not None,
        "shadow_mode": d.shadow_mode,
        "stat_name": d.stat_name,
        "limits": [_limit(p) for p in d.limits],
        "descriptors": _tree(d.children),
    }


def _limit(policy: LimitPolicy) -> Data:
    if policy.current is None or policy.limit is None:
        return {"unlimited": True, "name": policy.name, "replaces": sorted(policy.replaces)}
    limit = policy.limit
    out: Data = {
        "requests_per_unit": policy.current.requests_per_unit,
        "unit": UNIT_NAMES.get(policy.current.unit, str(policy.current.unit)),
        "name": policy.name,
        "replaces": sorted(policy.replaces),
        "algorithm": RateLimitAlgorithm(limit.algorithm).name,
        "window": str(limit.window),
    }
    if limit.algorithm == RateLimitAlgorithm.ROLLING_WINDOW:
        out["bucket"] = str(limit.bucket_duration)
    return out


def render(data: Mapping[str, Data], now: datetime) -> Markup:
    domains = data["ratelimits"]["domains"]
    if not domains:
        return el(
            "p", "No ratelimitconfig is in force: every ShouldRateLimit is answered OK.", class_="empty"
        )
    return el("div", [_domain(d) for d in domains])


def _domain(d: Data) -> Markup:
    handler = el(
        "a",
        el("code", d["handler"]),
        href=f"/adapters#{anchor('handler', d['handler'])}",
    )
    state = badge("counting", "ok") if d["available"] else badge("unavailable", "bad")
    return el(
        "section",
        el("h2", "domain ", el("code", d["domain"], class_="strong"), " ", state),
        el(
            "p",
            "from ",
            el("code", d["resource"]),
            ", counted by ",
            handler,
            " ",
            badge(d["adapter"], "dim"),
            el("span", f" {d['failure']}", class_="why") if d["failure"] else None,
        ),
        el("ul", [_node(n) for n in d["descriptors"]], class_="tree"),
        class_="domain",
        id=anchor("domain", d["domain"]),
    )


def _node(n: Data) -> Markup:
    value = n["value"]
    entry = (
        el("code", n["key"], class_="strong"),
        el("code", "=" + value if value is not None else " (any value)"),
    )
    tags: list[Any] = []
    if n["wildcard"]:
        tags.append(badge("wildcard", "dim"))
    if n["shadow_mode"]:
        tags.append(badge("shadow", "warn"))
    limits = [_limit_text(limit) for limit in n["limits"]]
    children = el("ul", [_node(c) for c in n["descriptors"]]) if n["descriptors"] else None
    return el("li", entry, " ", tags, el("span", limits, class_="limits"), children)


def _limit_text(limit: Data) -> Markup:
    if limit.get("unlimited"):
        return el("span", badge("unlimited", "ok"), _named(limit), class_="limit")
    rate = f"{limit['requests_per_unit']} / {limit['unit'].lower()}"
    algorithm = limit["algorithm"].lower().replace("_", " ")
    detail = f"{algorithm}, window {limit['window']}" + (
        f", bucket {limit['bucket']}" if "bucket" in limit else ""
    )
    tone = "bad" if limit["requests_per_unit"] == 0 else "limit-rate"
    return el(
        "span",
        el("b", rate, class_=tone),
        el("span", f" ({detail})", class_="dim"),
        _named(limit),
        class_="limit",
    )


def _named(limit: Data) -> Markup | None:
    parts = []
    if limit.get("name"):
        parts.append(el("span", " name ", el("code", limit["name"])))
    if limit.get("replaces"):
        parts.append(el("span", " replaces ", ", ".join(limit["replaces"])))
    return el("span", parts, class_="dim") if parts else None


VIEW = View(
    "ratelimits",
    "Rate limits",
    (Twin("ratelimits", ratelimits_data, "rate limit domains in force: descriptor trees, limits, handler"),),
    render,
)
