"""Quota: the quotas a Check asks for, allocated after an OK verdict (MIXER.md 8.4), in three parts.

- `plan`: per quota, the rules that route it whose match holds, and its instances built; no handler is
  called yet.
- `charge`: the calls. A handler with a `handle_quotas(calls)` method gets every quota of the Check that
  goes to it in one call (a list of (instance, QuotaArgs), answered by a list of QuotaResult in the same
  order), so a backend such as Redis is asked once per Check however many quotas it asks for; other
  handlers get one `handle_quota(instance, args)` per quota, as in Mixer.
- `outcomes`: each quota's answer. A failed instance or call grants 0 and the Check goes on; a quota no
  rule routes is granted in full; when several handlers answer one quota, the first answer is used.

Each quota's QuotaArgs carry the request's `best_effort` and its dedup id (the Check's followed by the
quota's name, as Mixer passes it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from ..adapter import HANDLE_QUOTAS, QuotaArgs, QuotaResult
from ..attribute import AttributeBag, RawReferences
from ..dispatch import DEFAULT_VALID_DURATION, QuotaOutcome, QuotaRequest
from .calls import Calls, log
from .handlers import BuiltHandler
from .table import Destination, Routes
from .trace import QUOTA, Trace

#: A handler's `handle_quotas` method and whether it must be awaited.
_Batch = tuple[Callable[..., Any], bool]


@dataclass(slots=True)
class QuotaCall:
    """One quota instance sent to one handler, and what came of it."""

    name: str
    rule: str
    destination: Destination
    instance: Any
    instance_fqn: str
    args: QuotaArgs
    result: Any = None
    failed: bool = False
    error: str = ""


@dataclass(slots=True)
class QuotaPlan:
    """One quota of a Check: the calls made for it and the references its matches and instances read."""

    request: QuotaRequest
    calls: list[QuotaCall] = field(default_factory=list)
    failed: bool = False  # an instance could not be built
    references: RawReferences = ()


class QuotaStep:
    def __init__(self, calls: Calls) -> None:
        self._calls = calls

    def plan(
        self,
        routes: Routes,
        bag: AttributeBag,
        mark: int,
        quotas: Mapping[str, QuotaRequest],
        dedup_id: str,
        trace: Trace | None = None,
    ) -> dict[str, QuotaPlan]:
        """Match and build each quota's instances; each quota starts from the bag's references at `mark`
        (the state after preprocessing) and keeps the references it read."""
        calls = self._calls
        plans: dict[str, QuotaPlan] = {}
        for name, request in quotas.items():
            bag.reset_references(mark)
            plan = plans[name] = QuotaPlan(request)
            args = QuotaArgs(request.amount, request.best_effort, dedup_id + name)
            for route in routes.quotas.get(name.lower(), ()):
                if not calls.holds(route.match, route.rule, bag, QUOTA, trace):
                    continue
                builder = route.instance
                try:
                    instance = builder.build(bag)
                except Exception as e:
                    calls.stats.instance_errors += 1
                    log.warning("quota %s: instance %s: %s", name, builder.fqn, e)
                    plan.failed = True
                    if trace is not None:
                        error = f"instance: {e}"
                        trace.called(QUOTA, route.destination, route.rule, (builder.fqn,), None, error, False)
                    continue
                plan.calls.append(QuotaCall(name, route.rule, route.destination, instance, builder.fqn, args))
            plan.references = bag.reference_items()
        return plans

    async def charge(self, plans: Mapping[str, QuotaPlan], timeout: float | None) -> None:
        """Make the planned calls: each handler's batch at once (handlers in parallel), the rest in turn."""
        singles: list[QuotaCall] = []
        batches: dict[BuiltHandler, tuple[Destination, _Batch, list[QuotaCall]]] = {}
        for plan in plans.values():
            for call in plan.calls:
                dest = call.destination
                if dest.batch is None:
                    singles.append(call)
                else:
                    batches.setdefault(dest.handler, (dest, dest.batch, []))[2].append(call)
        for call in singles:
            await self._one(call, timeout)
        if len(batches) == 1:
            await self._batch(*next(iter(batches.values())), timeout)
        elif batches:
            await asyncio.gather(*(self._batch(*b, timeout) for b in batches.values()))

    async def _one(self, call: QuotaCall, timeout: float | None) -> None:
        dest = call.destination
        started = perf_counter()
        try:
            result = dest.method(call.instance, call.args)
            if dest.is_async:
                result = await asyncio.wait_for(result, self._calls.deadline(timeout))
        except Exception as e:
            self._failed(call, e, started)
            return
        self._calls.count(dest, "ok", started)
        call.result = result

    async def _batch(
        self, dest: Destination, batch: _Batch, calls: list[QuotaCall], timeout: float | None
    ) -> None:
        method, is_async = batch
        started = perf_counter()
        try:
            results = method([(call.instance, call.args) for call in calls])
            if is_async:
                # asyncio.timeout, not wait_for: no task per call on the path every Check with quota takes.
                async with asyncio.timeout(self._calls.deadline(timeout)):
                    results = await results
            if not isinstance(results, Sequence) or len(results) != len(calls):
                got = f"{len(results)} results" if isinstance(results, Sequence) else type(results).__name__
                raise TypeError(f"{HANDLE_QUOTAS} answered {got} for {len(calls)} quotas")
        except Exception as e:
            self._calls.timed(dest, started)
            for call in calls:
                self._failed(call, e)
            return
        self._calls.timed(dest, started)  # one handler call, however many quotas it answered
        for call, result in zip(calls, results, strict=True):
            self._calls.count(dest, "ok")
            call.result = result

    def _failed(self, call: QuotaCall, e: Exception, started: float | None = None) -> None:
        # Mixer: a failed quota dispatch leaves the grant at 0 and the call goes on (MIXER.md 8.4).
        self._calls.count(call.destination, "error", started)
        handler = call.destination.handler.fqn
        log.warning("quota %s: handler %s failed: %s: %s", call.name, handler, type(e).__name__, e)
        call.failed = True
        call.error = f"{type(e).__name__}: {e}"

    def outcomes(self, plans: Mapping[str, QuotaPlan]) -> dict[str, QuotaOutcome]:
        return {name: _outcome(name, plan) for name, plan in plans.items()}


def _outcome(name: str, plan: QuotaPlan) -> QuotaOutcome:
    answer: QuotaResult | None = None
    failed = plan.failed
    for call in plan.calls:
        if call.failed:
            failed = True
            continue
        if answer is None:
            answer = call.result
        else:
            log.warning("quota %s: answered by more than one handler; the first answer is used", name)
    refs = plan.references
    request = plan.request
    if answer is None:
        if failed:
            return QuotaOutcome(0, DEFAULT_VALID_DURATION, references=refs)
        return QuotaOutcome(request.amount, DEFAULT_VALID_DURATION, references=refs)
    if not isinstance(answer, QuotaResult):
        log.warning("quota %s: handler returned %s, not a QuotaResult", name, type(answer).__name__)
        return QuotaOutcome(0, DEFAULT_VALID_DURATION, references=refs)
    return QuotaOutcome(
        answer.granted_amount, answer.valid_duration, int(answer.status), answer.message, references=refs
    )


def trace_calls(plans: Mapping[str, QuotaPlan], trace: Trace, made: bool = True) -> None:
    """One event per planned call, in plan order: its answer or error, or `made=False` when the calls
    were not made (planned only)."""
    for plan in plans.values():
        for call in plan.calls:
            trace.called(
                QUOTA, call.destination, call.rule, (call.instance_fqn,), call.result, call.error, made
            )
