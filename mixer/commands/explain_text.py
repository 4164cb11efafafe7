"""A Check's explanation (the admin page's `POST /debug/explain` answer) as text, for
`mixerd check --explain`: the verdict first, in the words `mixerd check` uses, then rule by rule, the
quotas that would be asked, and the referenced attributes."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

Data = Mapping[str, Any]


def explanation_lines(result: Data) -> list[str]:
    """The lines `mixerd check --explain` prints for `result`."""
    out = [
        f"Explained by config generation {result['generation']} "
        "(a dry run: no quota charged, nothing reported)"
    ]
    verdict, error = result.get("verdict"), result.get("error")
    if verdict is not None:
        out.append(f"Check status would be {_status(verdict['code'], verdict['message'])}")
        out.append(
            f"  Valid use count: {verdict['valid_use_count']}, valid duration: {verdict['valid_duration']}"
        )
        direct = verdict.get("direct_response")
        if direct:
            out.append(f"  Direct response: HTTP {direct['code']} {json.dumps(direct['body'])}")
        for side in ("request", "response"):
            operations = verdict[f"{side}_header_operations"]
            if operations:
                out.append(f"  {side.capitalize()} header operations")
                out += [f"    {op['operation']} {op['header']}: {op['value']}" for op in operations]
    elif error is not None:
        out.append(f"Check call would fail: {_status(error['code'], error['message'])}")
    out.append("Rules" if result["rules"] else "Rules: none applies to this request")
    for rule in result["rules"]:
        out += _rule(rule)
    quotas = result["quotas"]
    if quotas:
        out.append("Quotas")
        for quota in quotas:
            out += _quota(quota)
    references = result["referenced_attributes"]
    if references:
        out.append("Referenced Attributes")
        out += [f"  {_reference(r)} {r['condition']}" for r in references]
    return out


def print_explanation(result: Data, write: Callable[[str], Any] = print) -> None:
    for line in explanation_lines(result):
        write(line)


def _status(code: str, message: str) -> str:
    return f"{code} ({message})" if message else code


def _rule(rule: Data) -> list[str]:
    outcome = rule["outcome"]
    if outcome == "errored":
        outcome = f"errored, counted as failed: {rule['error']}"
    lines = [f"  {rule['step']:<8} {rule['rule']}: match {outcome}"]
    if rule["match"] not in ("", "true"):
        lines.append(f"           {rule['match']}")
    for call in rule["calls"]:
        lines.append(f"           -> {call['handler']} ({call['template']}) {_answer(call)}")
        for instance in call["instances"]:
            shown = instance["error"] or json.dumps(instance["values"])
            lines.append(f"              {instance['name']} {shown}")
    return lines


def _answer(call: Data) -> str:
    if call["error"]:
        return f"failed: {call['error']}"
    if not call["made"]:
        return "not called (dry run)"
    answer = call["answer"]
    if isinstance(answer, Mapping) and "code" in answer:
        message = f": {answer['message']}" if answer["message"] else ""
        valid = f"valid {answer['valid_duration']}, {answer['valid_use_count']} uses"
        return f"answered {answer['code']}{message} ({valid})"
    return f"answered {json.dumps(answer)}"


def _quota(quota: Data) -> list[str]:
    head = f"  {quota['quota']} {quota['amount']}{' (best effort)' if quota['best_effort'] else ''}"
    if "note" in quota:
        return [f"{head}: {quota['note']}"]
    lines = [f"{head}: would be asked of"]
    for ask in quota["would_ask"]:
        values = ask["error"] or json.dumps(ask["values"])
        lines.append(f"    {ask['handler']} for {ask['rule']}: {values}")
    return lines


def _reference(ref: Data) -> str:
    return f"{ref['name']}::{ref['key']}" if ref["key"] is not None else str(ref["name"])
