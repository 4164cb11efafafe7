"""Check, quota and Report through the routing table in force (MIXER.md 8, 9): the steps put together.

Each request reads the table once, at its start, and counts itself in the table's `inflight` so a
replaced table's handlers are closed only after its last request. Then, per bag: attribute generation
(generation.py), and the routes of the bag's namespace; for a Check the verdict (check.py) and, when it
allows, the quotas (quota.py); for a Report the instances buffered per destination and delivered
(report.py). What the steps share is in calls.py; what they tell a trace, in trace.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..attribute import AttributeBag, RawReferences
from ..dispatch import OK, CheckOutcome, DispatchError, QuotaOutcome, QuotaRequest
from .calls import DEFAULT_ADAPTER_TIMEOUT, Calls
from .check import CheckStep
from .generation import GenerationStep
from .quota import QuotaStep, trace_calls
from .report import ReportBatch, ReportStep
from .stats import RuntimeStats
from .table import TableSource
from .trace import Trace


class RuntimeDispatcher:
    """The rule engine behind the front-ends (implements mixerd.dispatch.Dispatcher).

    Beyond the protocol, `check` and `report` take a `trace` that records each rule's match and each
    handler's answer (trace.py), and `check` can leave quota uncharged (`charge=False`: quotas are
    planned and traced, no quota handler is called, and the outcome carries no quota results): the
    seams for explaining a decision and for decision logs.
    """

    def __init__(
        self, source: TableSource, stats: RuntimeStats, adapter_timeout: float = DEFAULT_ADAPTER_TIMEOUT
    ) -> None:
        self._source = source
        calls = Calls(stats, adapter_timeout)
        self._generation = GenerationStep(calls)
        self._check = CheckStep(calls)
        self._quota = QuotaStep(calls)
        self._report = ReportStep(calls)

    async def check(
        self,
        bag: AttributeBag,
        quotas: Mapping[str, QuotaRequest],
        dedup_id: str,
        timeout: float | None = None,
        *,
        trace: Trace | None = None,
        charge: bool = True,
    ) -> CheckOutcome:
        table = self._source.table
        table.inflight += 1
        try:
            routes = table.routes(bag)
            if routes.generators:
                await self._generation.run(routes, bag, timeout, trace)
                routes = table.routes(bag)
            mark = bag.mark_references()
            outcome = await self._check.run(routes, bag, timeout, trace)
            if not quotas or outcome.status_code != OK:
                return outcome
            precondition_refs = bag.reference_items()
            quota = self._quota
            plans = quota.plan(routes, bag, mark, quotas, dedup_id, trace)
            if charge:
                await quota.charge(plans, timeout)
            if trace is not None:
                trace_calls(plans, trace, made=charge)
            return _with_quotas(outcome, precondition_refs, quota.outcomes(plans) if charge else {})
        finally:
            table.inflight -= 1

    async def report(self, bags: Sequence[AttributeBag], *, trace: Trace | None = None) -> None:
        table = self._source.table
        table.inflight += 1
        try:
            batch = ReportBatch()
            for bag in bags:
                routes = table.routes(bag)
                if routes.generators:
                    try:
                        await self._generation.run(routes, bag, None, trace)
                    except DispatchError as e:
                        batch.errors.append(str(e))
                        continue
                    routes = table.routes(bag)
                self._report.buffer(routes, bag, batch, trace)
            await self._report.deliver(batch, trace)
        finally:
            table.inflight -= 1


def _with_quotas(
    outcome: CheckOutcome, references: RawReferences, quotas: dict[str, QuotaOutcome]
) -> CheckOutcome:
    # The constructor, not dataclasses.replace: this runs on every Check that asks for quota.
    return CheckOutcome(
        outcome.status_code,
        outcome.message,
        outcome.valid_duration,
        outcome.valid_use_count,
        outcome.request_header_operations,
        outcome.response_header_operations,
        outcome.direct_response_code,
        outcome.direct_response_body,
        references,
        quotas,
    )
