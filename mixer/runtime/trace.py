"""What a dispatch tells about itself as it goes: the seam for explaining a decision and for decision logs
(DESIGN.md decision 10).

Every step of the dispatcher (generate, check, header rules, quota, report) takes an optional `Trace` and
adds one event per rule match it evaluates (held, failed, or errored: a match that cannot be evaluated
counts as failed, as in Mixer) and one per handler call (what the handler answered, or why the call
failed). Quota calls can be planned without being made (`RuntimeDispatcher.check(..., charge=False)`):
their events say `made=False`. Requests without a trace (all of them, today) pay an `is None` test per
event.

A trace is plain data, in the order things happened; subclass it and override `add` to stream events
somewhere instead of keeping them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .table import Destination

#: The steps, in the order a Check runs them (a Report runs GENERATE and REPORT).
GENERATE, CHECK, HEADERS, QUOTA, REPORT = "generate", "check", "headers", "quota", "report"

#: What became of a rule's match.
HELD, FAILED, ERRORED = "held", "failed", "errored"


@dataclass(frozen=True, slots=True)
class MatchEvaluated:
    """A rule's match, evaluated in `step` (for QUOTA: per quota instance the rule sends)."""

    step: str
    rule: str
    outcome: str  # HELD, FAILED or ERRORED
    error: str = ""  # ERRORED: why the match could not be evaluated


@dataclass(frozen=True, slots=True)
class HandlerCalled:
    """One call to a handler: the instances sent, and its answer or why it failed.

    `rule` is the rule that sent the instances ("" for REPORT, whose one call per handler and template
    carries the instances of every rule and bag of the request)."""

    step: str
    handler: str
    template: str
    rule: str
    instances: tuple[str, ...]  # instance FQNs, in the order sent
    answer: Any = None  # what the handler returned (a CheckResult, a QuotaResult, generated attributes)
    error: str = ""  # not "": the instance could not be built, or the handler raised or did not answer
    made: bool = True  # False: planned and not made (an instance that failed to build; quota, not charged)


Event = MatchEvaluated | HandlerCalled


class Trace:
    """The events of one dispatch, in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, event: Event) -> None:
        self.events.append(event)

    def matched(self, step: str, rule: str, outcome: str, error: str = "") -> None:
        self.add(MatchEvaluated(step, rule, outcome, error))

    def called(
        self,
        step: str,
        destination: Destination,
        rule: str,
        instances: tuple[str, ...],
        answer: Any = None,
        error: str = "",
        made: bool = True,
    ) -> None:
        handler, template = destination.handler.fqn, destination.template.name
        self.add(HandlerCalled(step, handler, template, rule, instances, answer, error, made))
