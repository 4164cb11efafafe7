"""The routing table: by namespace and variety, each rule's match, the handler it calls and the instances.

A request of namespace N runs the default namespace's rules and then N's own (MIXER.md 5.5); each
namespace here lists its own rules and says whose it inherits.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ....adapter import Variety
from ....config.snapshot import HEADER_OPERATIONS, RuleConfig, Snapshot
from ..context import AdminContext, copied
from ..html import Markup, anchor, badge, el, table
from . import Data, Twin, View

#: Display order: what runs first for a request first.
VARIETIES = ("attribute_generator", "check", "quota", "report")
_OPERATIONS = {number: name for name, number in HEADER_OPERATIONS.items()}


def variety_name(variety: Variety) -> str:
    """How the page names a template variety (a check with output is a check)."""
    return "check" if variety is Variety.CHECK_WITH_OUTPUT else variety.name.lower()


def routes_data(ctx: AdminContext) -> Data:
    runtime = ctx.runtime
    if runtime is None:
        return {"generation": 0, "namespaces": []}
    table = runtime.table
    snapshot = table.snapshot
    by_namespace: dict[str, list[RuleConfig]] = {}
    for rule in snapshot.rules:
        by_namespace.setdefault(rule.namespace, []).append(rule)
    default = snapshot.default_namespace
    order = [default, *sorted(ns for ns in by_namespace if ns != default)]
    available = {fqn: h.available for fqn, h in table.handlers.items()}
    matched, errors = copied(runtime.stats.rule_matches), copied(runtime.stats.rule_errors)
    return {
        "generation": table.generation,
        "default_namespace": default,
        # mixerd_rule_matches_total and mixerd_rule_errors_total of each rule in force
        "rules": {
            rule.fqn: {"matched": matched.get(rule.fqn, 0), "errors": errors.get(rule.fqn, 0)}
            for rule in snapshot.rules
        },
        "namespaces": [
            {
                "namespace": ns,
                "inherits": None if ns == default else default,
                "varieties": _varieties(by_namespace.get(ns, []), snapshot, available),
                "header_rules": [_header_rule(r) for r in by_namespace.get(ns, []) if _has_headers(r)],
            }
            for ns in order
        ],
    }


def _varieties(rules: list[RuleConfig], snapshot: Snapshot, available: Mapping[str, bool]) -> Data:
    out: dict[str, list[Data]] = {v: [] for v in VARIETIES}
    for rule in rules:
        for action in rule.actions:
            handler = snapshot.handlers.get(action.handler)
            by_template: dict[str, list[str]] = {}
            variety_of: dict[str, str] = {}
            for fqn in action.instances:
                template = snapshot.instances[fqn].template
                by_template.setdefault(template.name, []).append(fqn)
                variety_of[template.name] = variety_name(template.variety)
            for template, instances in by_template.items():
                out[variety_of[template]].append(
                    {
                        "rule": rule.fqn,
                        "match": rule.match.text,
                        "handler": action.handler,
                        "adapter": handler.adapter.name if handler is not None else "",
                        "available": available.get(action.handler, False),
                        "template": template,
                        "instances": instances,
                    }
                )
    return out


def _has_headers(rule: RuleConfig) -> bool:
    return bool(rule.request_header_operations or rule.response_header_operations)


def _header_rule(rule: RuleConfig) -> Data:
    def ops(operations: Any) -> list[Data]:
        return [
            {"operation": _OPERATIONS.get(op.operation, str(op.operation)), "header": op.name}
            | {"values": [v.text for v in op.values]}
            for op in operations
        ]

    return {
        "rule": rule.fqn,
        "match": rule.match.text,
        "request": ops(rule.request_header_operations),
        "response": ops(rule.response_header_operations),
    }


_TITLES = {
    "attribute_generator": "Attribute generation",
    "check": "Check",
    "quota": "Quota",
    "report": "Report",
}


def render(data: Mapping[str, Data], now: datetime) -> Markup:
    routes = data["routes"]
    if not routes["namespaces"]:
        return el("p", "This server runs no rule engine: no routes.", class_="empty")
    counts = routes["rules"]
    return el("div", [_namespace(ns, counts) for ns in routes["namespaces"]])


def _namespace(ns: Data, counts: Mapping[str, Data]) -> Markup:
    inherits = ns["inherits"]
    note: tuple[Any, ...] = (
        ("its rules apply to every request",)
        if inherits is None
        else ("requests of this namespace run ", el("code", inherits), "'s rules first, then these")
    )
    sections = [
        el(
            "section",
            el(
                "h3",
                _TITLES[variety],
                el("span", f" {len(rows)} route{'s' * (len(rows) != 1)}", class_="dim"),
            ),
            table(
                ("rule", "match", "handler", "template", "instances"),
                (_route(row, counts) for row in rows),
                empty="",
                class_="filterable",
            ),
        )
        for variety, rows in ns["varieties"].items()
        if rows
    ]
    if ns["header_rules"]:
        sections.append(
            el(
                "section",
                el("h3", "Header operations"),
                table(
                    ("rule", "match", "request", "response"),
                    (
                        (
                            _rule(r["rule"], counts),
                            _match(r["match"]),
                            _ops(r["request"]),
                            _ops(r["response"]),
                        )
                        for r in ns["header_rules"]
                    ),
                    empty="",
                ),
            )
        )
    if not sections:
        sections.append(el("p", "No rules.", class_="empty"))
    return el(
        "section",
        el("h2", "namespace ", el("code", ns["namespace"]), el("span", " (", note, ")", class_="dim")),
        sections,
        class_="namespace",
    )


def _rule(fqn: str, counts: Mapping[str, Data]) -> Markup:
    """The rule's name, and how often its match held and failed to evaluate since the server started."""
    seen = counts.get(fqn, {"matched": 0, "errors": 0})
    errors = badge(f"{seen['errors']} match errors", "bad") if seen["errors"] else None
    return el(
        "div",
        el("code", fqn, class_="strong"),
        el("div", f"held {seen['matched']}", " ", errors, class_="dim"),
    )


def _route(row: Data, counts: Mapping[str, Data]) -> tuple[Any, ...]:
    handler = el(
        "a",
        el("code", row["handler"]),
        href=f"/adapters#{anchor('handler', row['handler'])}",
        class_=None if row["available"] else "bad",
    )
    return (
        _rule(row["rule"], counts),
        _match(row["match"]),
        (handler, " ", badge(row["adapter"], "dim"), "" if row["available"] else badge("unavailable", "bad")),
        el("code", row["template"]),
        el("ul", [el("li", el("code", i)) for i in row["instances"]], class_="plain"),
    )


def _match(text: str) -> Markup:
    return el("code", "(always)", class_="dim") if text in ("", "true") else el("code", text, class_="expr")


def _ops(ops: list[Data]) -> Markup:
    return el(
        "ul",
        [
            el("li", el("code", f"{op['operation']} {op['header']}"), " ", ", ".join(op["values"]))
            for op in ops
        ],
        class_="plain",
    )


VIEW = View(
    "routes",
    "Routes",
    (
        Twin(
            "routes",
            routes_data,
            "the routing table: by namespace and variety, rule, match, handler, instances",
        ),
    ),
    render,
)
