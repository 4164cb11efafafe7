"""Check: call the check handlers whose rules match, and combine their verdicts into one (MIXER.md 8.2,
8.3).

Sync handler methods are called inline; async ones are awaited together, bounded by the call's deadline.
Any failure (an instance that cannot be built, a handler that raises or does not answer) fails the Check
whole. `combine` is the verdict arithmetic on its own: the first failing status, every failing message,
the minimum validity; on a denial the first direct response, on an allow the header rules' operations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from time import perf_counter
from typing import Any

from ..adapter import CheckResult, Code, DirectResponse
from ..attribute import AttributeBag
from ..dispatch import (
    ALLOW,
    APPEND,
    DEFAULT_VALID_DURATION,
    DEFAULT_VALID_USE_COUNT,
    OK,
    REMOVE,
    REPLACE,
    CheckOutcome,
    DispatchError,
    HeaderOperation,
)
from ..lang import EvaluationError
from .calls import Calls, Pending, log
from .table import Destination, Group, HeaderRule, Routes
from .trace import CHECK, HEADERS, Trace

#: HTTP status for a deny status code, when a direct response names none (MIXER.md 8.3).
_HTTP_FOR_CODE = {
    Code.INVALID_ARGUMENT: 400,
    Code.OUT_OF_RANGE: 400,
    Code.UNAUTHENTICATED: 401,
    Code.PERMISSION_DENIED: 403,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.ABORTED: 409,
    Code.FAILED_PRECONDITION: 412,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.CANCELLED: 408,
    Code.DEADLINE_EXCEEDED: 504,
    Code.UNIMPLEMENTED: 501,
    Code.UNAVAILABLE: 503,
}


def http_status_for(code: int) -> int:
    return _HTTP_FOR_CODE.get(code, 500)  # type: ignore[call-overload]


class CheckStep:
    def __init__(self, calls: Calls) -> None:
        self._calls = calls

    async def run(
        self, routes: Routes, bag: AttributeBag, timeout: float | None, trace: Trace | None = None
    ) -> CheckOutcome:
        """The verdict of `routes`' check rules for `bag`; DispatchError when a call failed."""
        if not routes.check and not routes.header_rules:
            return ALLOW
        calls = self._calls
        answers: list[tuple[str, Any]] = []
        pending: list[Pending] = []
        errors: list[str] = []
        for dest in routes.check:
            for group in dest.groups:
                if calls.holds(group.match, group.rule, bag, CHECK, trace, group.counted):
                    self._call_each(dest, group, bag, answers, pending, errors, trace)
        if pending:
            await calls.gather(pending, calls.deadline(timeout), answers, errors, CHECK, trace)
        if errors:
            raise DispatchError(", ".join(errors))
        outcome = combine(answers)
        if outcome.status_code == OK and routes.header_rules:
            outcome = self._header_operations(outcome, routes.header_rules, bag, trace)
        return outcome

    def _call_each(
        self,
        dest: Destination,
        group: Group,
        bag: AttributeBag,
        answers: list[tuple[str, Any]],
        pending: list[Pending],
        errors: list[str],
        trace: Trace | None,
    ) -> None:
        """Call `dest` once per instance of `group` (a rule's instances for it)."""
        calls = self._calls
        handler = dest.handler.fqn
        for builder in group.instances:
            try:
                instance = builder.build(bag)
            except Exception as e:
                calls.stats.instance_errors += 1
                errors.append(f"{handler}: instance {builder.fqn}: {e}")
                if trace is not None:
                    trace.called(CHECK, dest, group.rule, (builder.fqn,), None, f"instance: {e}", False)
                continue
            started = perf_counter()
            try:
                answer = dest.method(instance)
            except Exception as e:
                calls.count(dest, "error", started)
                errors.append(f"{handler}: {type(e).__name__}: {e}")
                if trace is not None:
                    trace.called(CHECK, dest, group.rule, (builder.fqn,), error=f"{type(e).__name__}: {e}")
                continue
            if dest.is_async:
                pending.append((dest, answer, group.rule, (builder.fqn,)))
            else:
                calls.count(dest, "ok", started)
                answers.append((handler, answer))
                if trace is not None:
                    trace.called(CHECK, dest, group.rule, (builder.fqn,), answer)

    def _header_operations(
        self, outcome: CheckOutcome, rules: list[HeaderRule], bag: AttributeBag, trace: Trace | None
    ) -> CheckOutcome:
        """`outcome` with the operations of the header rules that match (an allowed Check only)."""
        request: list[HeaderOperation] = []
        response: list[HeaderOperation] = []
        for rule in rules:
            if not self._calls.holds(rule.match, rule.rule, bag, HEADERS, trace, rule.counted):
                continue
            for ops, out in ((rule.request, request), (rule.response, response)):
                for op in ops:
                    if op.operation == REMOVE:
                        out.append(HeaderOperation(op.name, "", REMOVE))
                        continue
                    for value in op.values:
                        try:
                            text = value.evaluate(bag)
                        except EvaluationError as e:  # Mixer skips an op whose value fails
                            log.debug("rule %s: header %s skipped: %s", rule.rule, op.name, e)
                            continue
                        if text:
                            out.append(HeaderOperation(op.name, text, op.operation))
        if not request and not response:
            return outcome
        return replace(
            outcome, request_header_operations=tuple(request), response_header_operations=tuple(response)
        )


def combine(answers: Sequence[tuple[str, Any]]) -> CheckOutcome:
    """One verdict from the check handlers' answers, (handler FQN, CheckResult) in call order (MIXER.md
    8.2): the first failing status, every failing message as `handler:message`, the minimum valid
    duration and use count (Mixer's defaults when there is no answer), and on a denial the first failing
    answer's direct response. DispatchError for an answer that is not a CheckResult."""
    status = OK
    messages: list[str] = []
    duration = count = None
    direct = None
    for handler, result in answers:
        if not isinstance(result, CheckResult):
            raise DispatchError(f"{handler}: returned {type(result).__name__}, not a CheckResult")
        if result.status != OK:
            if status == OK:
                status = int(result.status)
            messages.append(f"{handler}:{result.message}")
            if direct is None and result.direct_response is not None:
                direct = (result.status, result.direct_response)
        duration = result.valid_duration if duration is None else min(duration, result.valid_duration)
        count = result.valid_use_count if count is None else min(count, result.valid_use_count)
    outcome = CheckOutcome(
        status_code=status,
        message=", ".join(messages),
        valid_duration=DEFAULT_VALID_DURATION if duration is None else duration,
        valid_use_count=DEFAULT_VALID_USE_COUNT if count is None else count,
    )
    if direct is not None:  # only ever set on a denial
        return _with_direct_response(outcome, *direct)
    return outcome


def _with_direct_response(outcome: CheckOutcome, status: int, direct: DirectResponse) -> CheckOutcome:
    headers: list[HeaderOperation] = []
    for name, value in direct.headers.items():
        if name.lower() == "set-cookie":
            headers.extend(HeaderOperation(name, part.strip(), APPEND) for part in value.split(","))
        else:
            headers.append(HeaderOperation(name, value, REPLACE))
    return replace(
        outcome,
        direct_response_code=direct.code or http_status_for(status),
        direct_response_body=direct.body,
        response_header_operations=tuple(headers),
    )
