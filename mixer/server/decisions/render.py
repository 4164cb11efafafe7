"""A Decision as its JSON line (docs/decision-logs.md names every field) and as its debug log line.

Runs on the writer's thread, except the debug line (only at `--log-level debug`). Values of attributes,
string-map keys (headers) and rate-limit descriptor keys the operator names secret
(`decision_log_redact`) are written as `<redacted>`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from ...adapter import CheckResult, QuotaResult
from ...api.envoy.service.auth.v3 import external_auth_pb2
from ...attribute import Condition
from ...attribute.values import Duration, Timestamp, ip_text, utc_micros_text
from ...config.ratelimit_model import UNIT_NAMES
from ...runtime.trace import ERRORED, GENERATE, HELD, HandlerCalled, MatchEvaluated, Trace
from .record import Decision, code_name

REDACTED = "<redacted>"
_ABSENCE = Condition.ABSENCE


class Redaction:
    """Names (attributes, map keys, descriptor keys) whose values are never written; case-insensitive."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(n.strip().lower() for n in names if n.strip())

    @classmethod
    def parse(cls, text: str) -> Redaction:
        return cls(text.split(","))

    def hides(self, name: str) -> bool:
        return name.lower() in self.names


def value_json(value: Any, redaction: Redaction, name: str = "") -> Any:
    """An attribute value as JSON shows it: timestamps RFC 3339, durations Go's way, IPs as text, maps
    with their secret keys redacted."""
    if name and redaction.hides(name):
        return REDACTED
    if isinstance(value, Timestamp):
        return value.isoformat()
    if isinstance(value, Duration):
        return str(value)
    if isinstance(value, bytes):
        return ip_text(value) if len(value) in (4, 16) else value.hex(":")
    if isinstance(value, dict):
        return {k: REDACTED if redaction.hides(k) else v for k, v in value.items()}
    return value


def referenced_attributes(decision: Decision, redaction: Redaction) -> tuple[dict[str, Any], list[str]]:
    """The attributes the decision read, with their values, and those it found absent (`name` or
    `name[key]`)."""
    bag = decision.attributes
    values: dict[str, Any] = {}
    absent: list[str] = []
    if bag is None:
        return values, absent
    for ref, condition in decision.references:
        if isinstance(ref, tuple):
            name, key = ref
            mapping = bag.peek(name)
            value = mapping.get(key) if isinstance(mapping, dict) else None
            if condition == _ABSENCE or value is None:
                absent.append(f"{name}[{key}]")
                continue
            target = values.setdefault(name, {})
            if isinstance(target, dict):  # (not when the whole map is redacted)
                target[key] = REDACTED if redaction.hides(name) or redaction.hides(key) else value
            continue
        value = bag.peek(ref)
        if condition == _ABSENCE or value is None:
            absent.append(ref)
            continue
        values[ref] = value_json(value, redaction, ref)
    return values, absent


def _answer(answer: Any) -> dict[str, Any]:
    if isinstance(answer, CheckResult):
        out: dict[str, Any] = {"code": code_name(int(answer.status))}
        if answer.message:
            out["message"] = answer.message
        return out
    if isinstance(answer, QuotaResult):
        return {"code": code_name(int(answer.status)), "granted": answer.granted_amount}
    return {}


def _events(trace: Trace | None) -> Iterator[MatchEvaluated | HandlerCalled]:
    # Attribute generation feeds a decision but decides nothing: left out.
    return (e for e in (trace.events if trace is not None else ()) if e.step != GENERATE)


def rules_of(trace: Trace | None) -> list[dict[str, Any]]:
    """Each rule whose match held (or errored), once per step: check, headers, quota."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for event in _events(trace):
        if not isinstance(event, MatchEvaluated) or event.outcome not in (HELD, ERRORED):
            continue
        if (event.rule, event.step) in seen:
            continue
        seen.add((event.rule, event.step))
        entry = {"rule": event.rule, "step": event.step}
        if event.outcome == ERRORED:
            entry["error"] = event.error
        out.append(entry)
    return out


def handlers_of(trace: Trace | None) -> list[dict[str, Any]]:
    """Each handler call: the rule that sent it, its instances and its answer (or error)."""
    out: list[dict[str, Any]] = []
    for event in _events(trace):
        if not isinstance(event, HandlerCalled):
            continue
        entry: dict[str, Any] = {
            "rule": event.rule,
            "handler": event.handler,
            "template": event.template,
            "instances": list(event.instances),
            **_answer(event.answer),
        }
        if event.error:
            entry["error"] = event.error
        if not event.made:
            entry["made"] = False
        out.append(entry)
    return out


def verdict(decision: Decision) -> tuple[str, str]:
    """The decision's code and message (a cached ext_authz answer's are read from its bytes)."""
    if decision.cached_body is None:
        return decision.code, decision.message
    response = external_auth_pb2.CheckResponse.FromString(decision.cached_body)
    return code_name(response.status.code), response.status.message


def _descriptor(entries: Iterable[tuple[str, str]], redaction: Redaction) -> list[dict[str, str]]:
    return [{"key": k, "value": REDACTED if redaction.hides(k) else v} for k, v in entries]


def _rate_limits(decision: Decision, redaction: Redaction) -> list[dict[str, Any]]:
    out = []
    for request, status in zip(decision.descriptors, decision.statuses, strict=False):
        entry: dict[str, Any] = {
            "descriptor": _descriptor(request.entries, redaction),
            "code": "OVER_LIMIT" if status.code == 2 else "OK",
        }
        if status.current is not None:
            unit = UNIT_NAMES.get(status.current.unit, str(status.current.unit))
            entry["limit"] = {"requests_per_unit": status.current.requests_per_unit, "unit": unit}
            entry["remaining"] = status.remaining
        elif status.unlimited:
            entry["unlimited"] = True
        if status.rollup:
            entry["rule"] = status.rollup
        out.append(entry)
    return out


def record(decision: Decision, redaction: Redaction) -> dict[str, Any]:
    """The decision's fields, in the order docs/decision-logs.md lists them."""
    code, message = verdict(decision)
    request_id = decision.request_id or uuid.uuid4().hex  # (the recorder sets one)
    out: dict[str, Any] = {
        "time": utc_micros_text(decision.time_ns),
        "api": decision.api,
        "request_id": REDACTED if redaction.hides("request.id") else request_id,
        "code": code,
        "message": message,
    }
    if decision.domain:
        out["domain"] = decision.domain
        rules = [{"rule": s.rollup, "step": "ratelimit"} for s in decision.statuses if s.rollup]
        out["rules"] = rules
        out["handlers"] = [{"handler": decision.handler}] if decision.handler and rules else []
        out["rate_limits"] = _rate_limits(decision, redaction)
    else:
        out["rules"] = rules_of(decision.trace)
        out["handlers"] = handlers_of(decision.trace)
    if decision.quotas_asked is not None:
        granted = decision.quotas or {}
        out["quotas"] = [
            {
                "name": name,
                "asked": asked.amount,
                "granted": granted[name].granted_amount if name in granted else None,
                "code": code_name(granted[name].status_code) if name in granted else None,
            }
            for name, asked in decision.quotas_asked.items()
        ]
    out["duration_ms"] = round(decision.duration_ns / 1e6, 3)
    if decision.cached is not None:
        out["cached"] = decision.cached
    attributes, absent = referenced_attributes(decision, redaction)
    out["attributes"] = attributes
    out["absent"] = absent
    return out


def json_line(decision: Decision, redaction: Redaction) -> str:
    return json.dumps(record(decision, redaction), separators=(",", ":"), default=str)


def summary(decision: Decision, redaction: Redaction) -> str:
    """The debug line: `ext_authz PERMISSION_DENIED by rule deny.ns (handler denier.ns): message [...]`."""
    code, message = verdict(decision)
    head = f"{decision.api} {code}"
    tail = f" [request {decision.request_id or '-'}, {decision.duration_ns / 1e6:.3f} ms]"
    if decision.cached:
        made_by = [f"rule {c['rule']}" for c in handlers_of(decision.trace) if c.get("code", "OK") != "OK"]
        by = f" (decided by {', '.join(made_by)})" if made_by else ""
        return f"{head} from the verdict cache{by}" + (f": {message}" if message else "") + tail
    if decision.domain:
        return head + " " + _rate_limit_summary(decision, redaction) + tail
    calls = handlers_of(decision.trace)
    deciding = [c for c in calls if c.get("code", "OK") != "OK" or "error" in c]
    if deciding:
        parts = [f"rule {c['rule']} (handler {c['handler']})" for c in deciding]
        text = f"{head} by {', '.join(parts)}"
    else:
        held = [r["rule"] for r in rules_of(decision.trace) if "error" not in r]
        text = f"{head}: " + (f"rules {', '.join(dict.fromkeys(held))} held" if held else "no rule matched")
    errored = [f"{r['rule']} ({r['error']})" for r in rules_of(decision.trace) if "error" in r]
    if errored:
        text += f"; match errors in {', '.join(errored)}"
    if decision.message:
        text += f": {decision.message}"
    return text + tail


def _rate_limit_summary(decision: Decision, redaction: Redaction) -> str:
    parts = []
    for entry in _rate_limits(decision, redaction):
        pairs = ",".join(f"{e['key']}={e['value']}" for e in entry["descriptor"])
        limit = entry.get("limit")
        if limit is None:
            parts.append(f"({pairs}) no limit")
            continue
        rule = f"limit {entry.get('rule', '')} " if entry.get("rule") else ""
        per = f"{limit['requests_per_unit']}/{limit['unit']}"
        parts.append(f"({pairs}) {entry['code']} by {rule}{per}, {entry['remaining']} left")
    return f"domain {decision.domain}: " + "; ".join(parts)
