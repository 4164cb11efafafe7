"""The Explain view: a form to paste a request into, and its explanation (explain.py) as the page shows it.

The form is a plain POST to `/explain` (no script needed); the answer is the same data
`POST /debug/explain` gives scripts, rendered: the verdict, rule by rule what the match came to and what
each handler got and answered, the quotas or rate limits that would be asked, the referenced attributes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..explain_http import PAGE_PATH, Form
from ..explain_request import EXT_AUTHZ, KINDS, MIXER_CHECK, RATELIMIT
from ..html import Markup, badge, el, facts, table
from . import Data, View

_KIND_TITLES = {
    MIXER_CHECK: "Mixer Check: attributes",
    EXT_AUTHZ: "Envoy ext_authz: CheckRequest",
    RATELIMIT: "Envoy rate limit: RateLimitRequest",
}
_EXAMPLES = {
    MIXER_CHECK: {"request.headers": {"x-user": "alice"}, "destination.service.host": "reviews"},
    EXT_AUTHZ: {
        "attributes": {
            "source": {"address": {"socket_address": {"address": "10.0.0.7", "port_value": 4711}}},
            "request": {"http": {"method": "GET", "path": "/reviews/1", "headers": {"x-user": "alice"}}},
        }
    },
    RATELIMIT: {
        "domain": "edge",
        "descriptors": [{"entries": [{"key": "remote_address", "value": "10.0.0.7"}]}],
    },
}
_OUTCOME_TONES = {"held": "ok", "failed": "dim", "errored": "bad"}


def render(data: Mapping[str, Data], now: datetime) -> Markup:
    """The view without a result: the form, empty."""
    return form(Form())


def form(sent: Form) -> Markup:
    kinds = el(
        "select",
        [el("option", _KIND_TITLES[k], value=k, selected=k == sent.kind) for k in KINDS],
        name="kind",
        id="explain-kind",
    )
    placeholder = json.dumps(_EXAMPLES[MIXER_CHECK], indent=2)
    examples = el(
        "details",
        el("summary", "examples of each kind"),
        [(el("h3", _KIND_TITLES[k]), el("pre", json.dumps(_EXAMPLES[k], indent=2))) for k in KINDS],
    )
    return el(
        "form",
        el(
            "p",
            "Paste a request: its decision is made again as a dry run, and every step is shown. "
            "Check handlers are asked (they decide without side effects); no quota or rate limit is "
            "charged and nothing is reported. Scripts: ",
            el("code", "POST /debug/explain"),
            " with the same JSON (docs/admin.md).",
            class_="dim",
        ),
        el("label", "What to explain ", kinds, **{"for": "explain-kind"}),
        el("label", "Request (JSON)", class_="block", **{"for": "explain-request"}),
        el(
            "textarea", sent.request, name="request", id="explain-request", rows="10", placeholder=placeholder
        ),
        el(
            "label",
            "Quotas to ask for (Mixer Check only, JSON) ",
            el("input", type="text", name="quotas", value=sent.quotas, placeholder='{"requestcount": 1}'),
        ),
        el("button", "Explain", type="submit"),
        examples,
        method="post",
        action=PAGE_PATH,
        class_="explain",
    )


def render_result(sent: Form, answer: Data) -> Markup:
    """The form as sent, and the explanation (or why there is none)."""
    if "api" not in answer:
        result = el(
            "section",
            el("h2", "Cannot explain this request"),
            el("p", answer.get("error", "")),
            class_="rejection",
        )
    elif answer["api"] == "ratelimit":
        result = _rate_limit(answer)
    else:
        result = _check(answer)
    raw = el("details", el("summary", "the explanation as JSON"), el("pre", json.dumps(answer, indent=2)))
    return el("div", form(sent), el("section", result, raw, id="explanation"))


# -- a Check ------------------------------------------------------------------------------------------


def _check(answer: Data) -> Markup:
    verdict, error = answer["verdict"], answer["error"]
    if verdict is not None:
        code = verdict["code"]
        summary = [
            ("verdict", badge(code, "ok" if code == "OK" else "bad")),
            ("message", verdict["message"] or el("span", "none", class_="dim")),
            ("valid for", f"{verdict['valid_duration']}, {verdict['valid_use_count']} uses"),
        ]
    else:
        summary = [("call fails", badge(error["code"], "bad")), ("message", error["message"])]
    summary += [
        ("api", answer["api"]),
        ("config generation", answer["generation"]),
        ("namespace", el("code", answer["namespace"])),
    ]
    parts: list[Any] = [el("h2", "Verdict"), facts(summary)]
    if verdict is not None and verdict["direct_response"]:
        direct = verdict["direct_response"]
        parts.append(
            el("p", "Direct response: HTTP ", el("b", direct["code"]), " ", el("code", direct["body"]))
        )
    if verdict is not None:
        operations = [
            (side, op) for side in ("request", "response") for op in verdict[f"{side}_header_operations"]
        ]
        if operations:
            parts += [
                el("h3", "Header operations"),
                table(
                    ("side", "operation", "header", "value"),
                    (
                        (side, op["operation"], el("code", op["header"]), op["value"])
                        for side, op in operations
                    ),
                    empty="",
                ),
            ]
    parts += [
        el("h2", "Rules"),
        table(
            ("step", "rule", "match", "outcome", "handler calls"),
            (_rule(r) for r in answer["rules"]),
            empty="No rule applies to this request.",
            class_="explain-rules",
        ),
        el("h2", "Quotas"),
        table(
            ("quota", "amount", "would ask", "note"),
            (_quota(q) for q in answer["quotas"]),
            empty="The request asks for no quota.",
        ),
        el("h2", "Referenced attributes"),
        el(
            "ul",
            [
                el("li", el("code", _reference(r)), " ", badge(r["condition"], "dim"))
                for r in answer["referenced_attributes"]
            ],
            class_="inline",
        )
        if answer["referenced_attributes"]
        else el("p", "None: the verdict holds whatever the request carries.", class_="empty"),
        el("h2", "Attributes"),
        _attributes(answer["attributes"], answer["generated"]),
    ]
    if "response" in answer:
        parts += [el("h2", "ext_authz response"), el("pre", json.dumps(answer["response"], indent=2))]
    return el("div", parts)


def _rule(rule: Data) -> tuple[Any, ...]:
    outcome = rule["outcome"]
    shown_outcome = (
        badge(outcome, _OUTCOME_TONES.get(outcome, "dim")),
        el("div", rule["error"], class_="why") if rule.get("error") else None,
    )
    return (
        rule["step"],
        el("code", rule["rule"], class_="strong"),
        _match(rule["match"]),
        shown_outcome,
        el("ul", [el("li", _handler_call(c)) for c in rule["calls"]], class_="plain")
        if rule["calls"]
        else None,
    )


def _match(text: str) -> Markup:
    return el("code", "(always)", class_="dim") if text in ("", "true") else el("code", text, class_="expr")


def _handler_call(call: Data) -> Markup:
    if call["error"]:
        result: Any = el("span", "failed: ", call["error"], class_="why")
    elif not call["made"]:
        result = el("span", "not called (dry run)", class_="dim")
    else:
        result = ("answered ", _answer(call["answer"]))
    return el(
        "div",
        el("code", call["handler"]),
        " ",
        badge(call["template"], "dim"),
        " ",
        result,
        [_instance(i) for i in call["instances"]],
    )


def _answer(answer: Any) -> Markup:
    if isinstance(answer, Mapping) and "code" in answer:
        code = answer["code"]
        return el(
            "span",
            badge(code, "ok" if code == "OK" else "bad"),
            f" {answer['message']}" if answer.get("message") else "",
            el(
                "span", f" (valid {answer['valid_duration']}, {answer['valid_use_count']} uses)", class_="dim"
            ),
        )
    return el("code", json.dumps(answer))


def _instance(instance: Data) -> Markup:
    if instance.get("error"):
        return el("div", el("code", instance["name"]), " ", el("span", instance["error"], class_="why"))
    return el(
        "div", el("code", instance["name"]), " ", el("code", json.dumps(instance["values"]), class_="dim")
    )


def _quota(quota: Data) -> tuple[Any, ...]:
    asks = [
        el(
            "li",
            el("code", ask["handler"]),
            " for ",
            el("code", ask["rule"]),
            " ",
            el("code", json.dumps(ask["values"]), class_="dim"),
            el("div", ask["error"], class_="why") if ask["error"] else None,
        )
        for ask in quota["would_ask"]
    ]
    return (
        el("code", quota["quota"], class_="strong"),
        (quota["amount"], " (best effort)" if quota["best_effort"] else ""),
        el("ul", asks, class_="plain") if asks else None,
        el("span", quota.get("note", "not charged (dry run)"), class_="dim"),
    )


def _reference(ref: Data) -> str:
    return f"{ref['name']}::{ref['key']}" if ref["key"] is not None else ref["name"]


def _attributes(given: Data, generated: Data) -> Markup:
    rows = [(el("code", n), el("code", json.dumps(v)), "") for n, v in given.items()]
    rows += [
        (el("code", n), el("code", json.dumps(v)), badge("generated", "dim")) for n, v in generated.items()
    ]
    return table(("attribute", "value", ""), rows, empty="The request carries no attribute.")


# -- a rate limit request -----------------------------------------------------------------------------


def _rate_limit(answer: Data) -> Markup:
    code = answer.get("overall_code")
    summary: list[tuple[str, Any]] = [
        ("overall", badge(code, "ok" if code == "OK" else "bad") if code else badge("UNAVAILABLE", "bad")),
        ("domain", el("code", answer["domain"])),
        ("ratelimitconfig", answer["ratelimitconfig"] or el("span", "none has this domain", class_="dim")),
        ("handler", el("code", answer["handler"]) if answer["handler"] else "-"),
        ("config generation", answer["generation"]),
    ]
    parts: list[Any] = [el("h2", "Answer"), facts(summary)]
    if answer.get("error"):
        parts.append(el("p", answer["error"], class_="why"))
    if not answer["known"]:
        parts.append(el("p", "No ratelimitconfig has this domain: every descriptor is OK.", class_="empty"))
    parts += [
        el("h2", "Descriptors"),
        table(
            ("entries", "matched", "would ask (nothing counted)", "status"),
            (_descriptor(d) for d in answer["descriptors"]),
            empty="",
        ),
    ]
    if "response" in answer:
        parts += [el("h2", "RateLimitResponse"), el("pre", json.dumps(answer["response"], indent=2))]
    return el("div", parts)


def _descriptor(d: Data) -> tuple[Any, ...]:
    entries = el("code", ", ".join(f"{e['key']}={e['value']}" for e in d["entries"]))
    matched: Any = el("span", "no descriptor of the config", class_="dim")
    if d["override"] is not None:
        o = d["override"]
        matched = ("Envoy's override: ", el("b", f"{o['requests_per_unit']}/{o['unit']}"))
    elif d["matched"] is not None:
        m = d["matched"]
        matched = (
            el("code", m["descriptor"]),
            " shadow mode" if m["shadow_mode"] else "",
            " quota mode" if m["quota_mode"] else "",
            el("ul", [el("li", _limit(limit)) for limit in m["limits"]], class_="plain"),
        )
    asks = el(
        "ul",
        [
            el(
                "li",
                f"{a['hits']} of {a['limit']['max_amount']} per {a['limit']['window']}",
                f" ({a['limit']['algorithm']})",
                el("span", f" remaining now {a['remaining_now']}", class_="dim")
                if "remaining_now" in a
                else "",
                " ",
                badge("would pass", "ok") if a.get("would_be_allowed") else badge("would be over", "bad"),
            )
            for a in d["would_ask"]
        ],
        class_="plain",
    )
    status = d.get("status")
    shown_status: Any = "-"
    if status is not None:
        shown_status = (
            badge(status["code"], "ok" if status["code"] == "OK" else "bad"),
            f" remaining {status['limit_remaining']}",
        )
    return (entries, matched, asks, shown_status)


def _limit(limit: Data) -> Markup:
    rate = f"{limit['requests_per_unit']} per {(limit['unit'] or '').lower()}"
    text = "unlimited" if limit["unlimited"] else rate
    return el(
        "span",
        el("b", text, class_="limit-rate"),
        f" {limit['name']}" if limit["name"] else "",
        badge("replaced", "warn") if limit["replaced"] else "",
        badge("blocks every hit", "bad") if limit["blocks"] else "",
    )


VIEW = View("explain", "Explain", (), render)
