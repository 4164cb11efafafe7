"""A dispatch's trace (mixerd.runtime.trace) as the explanation's plain data: rule by rule, what the match
came to and which handler got which instances with what values and answered what; the quotas a Check
would ask for; the verdict and the attributes it referenced.

Instances are built again from the bag the dispatch saw, on a copy of it (the dispatch keeps only their
names, and the copy keeps the request's referenced attributes as they were).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ...adapter import CheckResult, Code
from ...attribute import AttributeBag, RawReferences
from ...config.snapshot import HEADER_OPERATIONS, Snapshot
from ...dispatch import CheckOutcome, HeaderOperation, QuotaRequest
from ...runtime.trace import QUOTA, HandlerCalled, MatchEvaluated, Trace
from .explain_values import shown

Data = dict[str, Any]
_OPERATIONS = {number: name for name, number in HEADER_OPERATIONS.items()}


def code_name(code: int) -> str:
    """A google.rpc code's name (its number when it has none)."""
    try:
        return Code(code).name
    except ValueError:
        return str(code)


def rules(trace: Trace, snapshot: Snapshot, probe: AttributeBag) -> list[Data]:
    """One entry per rule match evaluated, in order, with the handler calls that followed it."""
    matches = {rule.fqn: rule.match.text for rule in snapshot.rules}
    out: list[Data] = []
    latest: dict[tuple[str, str], Data] = {}
    for event in trace.events:
        if isinstance(event, MatchEvaluated):
            entry = {
                "step": event.step,
                "rule": event.rule,
                "match": matches.get(event.rule, ""),
                "outcome": event.outcome,
                "error": event.error,
                "calls": [],
            }
            out.append(entry)
            latest[(event.step, event.rule)] = entry
        else:  # quota calls are shown again, per quota, by `quotas`
            call = _call(event, snapshot, probe)
            owner = latest.get((event.step, event.rule))
            if owner is not None:
                owner["calls"].append(call)
            else:  # a call no match came before (none today): shown on its own
                out.append(
                    {"step": event.step, "rule": event.rule, "match": "", "outcome": "", "calls": [call]}
                )
    return out


def _call(event: HandlerCalled, snapshot: Snapshot, probe: AttributeBag) -> Data:
    return {
        "handler": event.handler,
        "template": event.template,
        "instances": [instance(fqn, snapshot, probe) for fqn in event.instances],
        "answer": answer(event.answer),
        "error": event.error,
        "made": event.made,
    }


def instance(fqn: str, snapshot: Snapshot, probe: AttributeBag) -> Data:
    """An instance by name, with the values it is built with from `probe` (or why it cannot be)."""
    builder = snapshot.instances.get(fqn)
    if builder is None:
        return {"name": fqn, "values": None, "error": "not in the config in force"}
    try:
        return {"name": fqn, "values": shown(builder.build(probe)), "error": ""}
    except Exception as e:
        return {"name": fqn, "values": None, "error": str(e)}


def answer(value: Any) -> Any:
    """A handler's answer as data; a CheckResult with its code by name."""
    if isinstance(value, CheckResult):
        out: Data = {
            "code": code_name(value.status),
            "message": value.message,
            "valid_duration": str(value.valid_duration),
            "valid_use_count": value.valid_use_count,
        }
        if value.direct_response is not None:
            out["direct_response"] = shown(value.direct_response)
        return out
    return shown(value)


def quotas(
    trace: Trace,
    requested: Mapping[str, QuotaRequest],
    dedup_id: str,
    snapshot: Snapshot,
    probe: AttributeBag,
    asked: bool,
) -> list[Data]:
    """Per quota the request names: what would be asked of which handler for which rule, never charged."""
    by_short = {name.lower(): name for name in requested}
    routed: dict[str, list[Data]] = {name: [] for name in requested}
    for event in trace.events:
        if not isinstance(event, HandlerCalled) or event.step != QUOTA:
            continue
        fqn = event.instances[0]
        name = by_short.get(fqn.split(".", 1)[0].lower())
        if name is None:
            continue
        built = instance(fqn, snapshot, probe)
        routed[name].append(
            {
                "rule": event.rule,
                "handler": event.handler,
                "instance": fqn,
                "values": built["values"],
                "error": event.error or built["error"],
            }
        )
    out = []
    for name, request in requested.items():
        entry: Data = {
            "quota": name,
            "amount": request.amount,
            "best_effort": request.best_effort,
            "dedup_id": dedup_id + name,  # as the handler would get it (quota.py)
            "charged": False,
        }
        if not asked:
            entry["note"] = "not asked: the check did not allow the request"
        elif not routed[name]:
            entry["note"] = "no rule routes it here: a Check grants it in full"
        entry["would_ask"] = routed[name]
        out.append(entry)
    return out


def verdict(outcome: CheckOutcome) -> Data:
    direct = None
    if outcome.direct_response_code or outcome.direct_response_body:
        direct = {"code": outcome.direct_response_code, "body": outcome.direct_response_body}
    return {
        "code": code_name(outcome.status_code),
        "message": outcome.message,
        "valid_duration": str(outcome.valid_duration),
        "valid_use_count": outcome.valid_use_count,
        "request_header_operations": header_operations(outcome.request_header_operations),
        "response_header_operations": header_operations(outcome.response_header_operations),
        "direct_response": direct,
    }


def header_operations(operations: Iterable[HeaderOperation]) -> list[Data]:
    return [
        {
            "operation": _OPERATIONS.get(op.operation, str(op.operation)),
            "header": op.name,
            "value": shown(op.value, op.name),
        }
        for op in operations
    ]


def references(items: RawReferences) -> list[Data]:
    """Referenced attributes as a Check answers them: name, string-map key (or null), condition."""
    out = []
    for ref, condition in items:
        name, key = ref if isinstance(ref, tuple) else (ref, None)
        out.append({"name": name, "key": key, "condition": condition.name})
    return out
