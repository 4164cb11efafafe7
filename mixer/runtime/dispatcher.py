"""Check, quota and Report through the routing table in force (MIXER.md 8, 9).

Each request reads the table once, at its start, and counts itself in the table's `inflight` so a
replaced table's handlers are closed only after its last request. Sync handler methods are called
inline; async ones are awaited together, bounded by the call's deadline.

Quotas: a handler with a `handle_quotas(calls)` method gets every quota of one Check that goes to it in
one call (a list of (instance, QuotaArgs), answered by a list of QuotaResult in the same order), so a
backend such as Redis is asked once per Check however many quotas it asks for; other handlers get one
`handle_quota(instance, args)` per quota, as in Mixer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..adapter import HANDLE_QUOTAS, CheckResult, Code, QuotaArgs, QuotaResult
from ..attribute import AttributeBag, RawReferences
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
    QuotaOutcome,
    QuotaRequest,
)
from ..lang import EvaluationError
from .handlers import BuiltHandler, HandlerUnavailable
from .stats import RuntimeStats
from .table import Destination, Group, Match, Routes, RoutingTable

_log = logging.getLogger(__name__)

#: How long to wait on async adapters when the caller set no deadline.
DEFAULT_ADAPTER_TIMEOUT = 5.0

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


class TableSource(Protocol):
    @property
    def table(self) -> RoutingTable: ...


def http_status_for(code: int) -> int:
    return _HTTP_FOR_CODE.get(code, 500)  # type: ignore[call-overload]


class RuntimeDispatcher:
    """The rule engine behind the front-ends (implements mixerd.dispatch.Dispatcher)."""

    def __init__(
        self, source: TableSource, stats: RuntimeStats, adapter_timeout: float = DEFAULT_ADAPTER_TIMEOUT
    ) -> None:
        self._source = source
        self._stats = stats
        self._timeout = adapter_timeout

    def _deadline(self, timeout: float | None) -> float:
        # Leave part of the caller's deadline for the answer itself, so a hung adapter gives INTERNAL
        # rather than the caller's DEADLINE_EXCEEDED.
        if timeout is None:
            return self._timeout
        return max(0.001, min(self._timeout, timeout * 0.8))

    # -- Check ----------------------------------------------------------------------------------

    async def check(
        self,
        bag: AttributeBag,
        quotas: Mapping[str, QuotaRequest],
        dedup_id: str,
        timeout: float | None = None,
    ) -> CheckOutcome:
        table = self._source.table
        table.inflight += 1
        try:
            routes = table.routes(bag)
            if routes.generators:
                await self._preprocess(routes, bag, timeout)
                routes = table.routes(bag)
            mark = bag.mark_references()
            outcome = await self._check(routes, bag, timeout)
            if not quotas or outcome.status_code != OK:
                return outcome
            precondition_refs = bag.reference_items()
            granted = await self._quotas(routes, bag, mark, quotas, dedup_id, timeout)
            return _with_quotas(outcome, precondition_refs, granted)
        finally:
            table.inflight -= 1

    def _matches(self, match: Match, rule: str, bag: AttributeBag) -> bool:
        if match is None:
            return True
        try:
            return match(bag) is True
        except EvaluationError as e:
            # Mixer: a match that cannot be evaluated counts as false (MIXER.md 4.1).
            self._stats.match_errors += 1
            _log.debug("rule %s: match failed, counted as false: %s", rule, e)
            return False
        except Exception as e:
            self._stats.match_errors += 1
            _log.warning("rule %s: match failed, counted as false: %s", rule, e)
            return False

    async def _check(self, routes: Routes, bag: AttributeBag, timeout: float | None) -> CheckOutcome:
        if not routes.check and not routes.header_rules:
            return ALLOW
        results: list[tuple[str, Any]] = []
        pending: list[tuple[Destination, Awaitable[Any]]] = []
        errors: list[str] = []
        for dest in routes.check:
            for group in dest.groups:
                if not self._matches(group.match, group.rule, bag):
                    continue
                self._call_each(dest, group, bag, results, pending, errors)
        if pending:
            await self._gather(pending, self._deadline(timeout), results, errors)
        if errors:
            raise DispatchError(", ".join(errors))
        return self._combine(results, routes, bag)

    def _call_each(
        self,
        dest: Destination,
        group: Group,
        bag: AttributeBag,
        results: list[tuple[str, Any]],
        pending: list[tuple[Destination, Awaitable[Any]]],
        errors: list[str],
    ) -> None:
        handler = dest.handler.fqn
        for builder in group.instances:
            try:
                instance = builder.build(bag)
            except Exception as e:
                self._stats.instance_errors += 1
                errors.append(f"{handler}: instance {builder.fqn}: {e}")
                continue
            try:
                answer = dest.method(instance)
            except Exception as e:
                self._count(dest, "error")
                errors.append(f"{handler}: {type(e).__name__}: {e}")
                continue
            if dest.is_async:
                pending.append((dest, answer))
            else:
                self._count(dest, "ok")
                results.append((handler, answer))

    def _count(self, dest: Destination, outcome: str) -> None:
        self._stats.dispatches[(dest.handler.fqn, dest.template.name, outcome)] += 1

    async def _gather(
        self,
        pending: list[tuple[Destination, Awaitable[Any]]],
        deadline: float,
        results: list[tuple[str, Any]],
        errors: list[str],
    ) -> None:
        tasks = [asyncio.ensure_future(answer) for _, answer in pending]
        _done, late = await asyncio.wait(tasks, timeout=deadline)
        for task in late:
            task.cancel()
        for (dest, _), task in zip(pending, tasks, strict=True):
            handler = dest.handler.fqn
            if task in late:
                self._count(dest, "error")
                errors.append(f"{handler}: no answer within {deadline:.3g}s")
            elif task.exception() is not None:
                e = task.exception()
                self._count(dest, "error")
                errors.append(f"{handler}: {type(e).__name__}: {e}")
            else:
                self._count(dest, "ok")
                results.append((handler, task.result()))

    def _combine(self, results: list[tuple[str, Any]], routes: Routes, bag: AttributeBag) -> CheckOutcome:
        """MIXER.md 8.2: minimum validity, the first failing code, every failing message."""
        status = OK
        messages: list[str] = []
        duration = count = None
        direct = None
        for handler, result in results:
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
        if status == OK:
            if routes.header_rules:
                outcome = self._header_operations(outcome, routes, bag)
        elif direct is not None:
            outcome = _with_direct_response(outcome, *direct)
        return outcome

    def _header_operations(self, outcome: CheckOutcome, routes: Routes, bag: AttributeBag) -> CheckOutcome:
        request: list[HeaderOperation] = []
        response: list[HeaderOperation] = []
        for rule in routes.header_rules:
            if not self._matches(rule.match, rule.rule, bag):
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
                            _log.debug("rule %s: header %s skipped: %s", rule.rule, op.name, e)
                            continue
                        if text:
                            out.append(HeaderOperation(op.name, text, op.operation))
        if not request and not response:
            return outcome
        return replace(
            outcome, request_header_operations=tuple(request), response_header_operations=tuple(response)
        )

    # -- quota ----------------------------------------------------------------------------------

    async def _quotas(
        self,
        routes: Routes,
        bag: AttributeBag,
        mark: int,
        quotas: Mapping[str, QuotaRequest],
        dedup_id: str,
        timeout: float | None,
    ) -> dict[str, QuotaOutcome]:
        """Every quota of the Check: match and build each quota's instances, call the handlers (one call
        per handler that takes a batch), then each quota's outcome (MIXER.md 8.4)."""
        plans: dict[str, _QuotaPlan] = {}
        singles: list[_QuotaCall] = []
        batches: dict[BuiltHandler, tuple[Destination, _Batch, list[_QuotaCall]]] = {}
        for name, request in quotas.items():
            bag.reset_references(mark)  # each quota starts from the state after preprocessing
            plan = plans[name] = _QuotaPlan(request)
            args = QuotaArgs(request.amount, request.best_effort, dedup_id + name)
            for route in routes.quotas.get(name.lower(), ()):
                if not self._matches(route.match, route.instance.fqn, bag):
                    continue
                try:
                    instance = route.instance.build(bag)
                except Exception as e:
                    self._stats.instance_errors += 1
                    _log.warning("quota %s: instance %s: %s", name, route.instance.fqn, e)
                    plan.failed = True
                    continue
                dest = route.destination
                call = _QuotaCall(name, dest, instance, args)
                plan.calls.append(call)
                if dest.batch is None:
                    singles.append(call)
                else:
                    batches.setdefault(dest.handler, (dest, dest.batch, []))[2].append(call)
            plan.references = bag.reference_items()
        for call in singles:
            await self._quota_one(call, timeout)
        if len(batches) == 1:
            await self._quota_batch(*next(iter(batches.values())), timeout)
        elif batches:
            await asyncio.gather(*(self._quota_batch(*b, timeout) for b in batches.values()))
        return {name: self._quota_outcome(name, plan) for name, plan in plans.items()}

    async def _quota_one(self, call: _QuotaCall, timeout: float | None) -> None:
        dest = call.destination
        try:
            result = dest.method(call.instance, call.args)
            if dest.is_async:
                result = await asyncio.wait_for(result, self._deadline(timeout))
        except Exception as e:
            self._quota_failed(call, e)
            return
        self._count(dest, "ok")
        call.result = result

    async def _quota_batch(
        self, dest: Destination, batch: _Batch, calls: list[_QuotaCall], timeout: float | None
    ) -> None:
        method, is_async = batch
        try:
            results = method([(call.instance, call.args) for call in calls])
            if is_async:
                # asyncio.timeout, not wait_for: no task per call on the path every Check with quota takes.
                async with asyncio.timeout(self._deadline(timeout)):
                    results = await results
            if not isinstance(results, Sequence) or len(results) != len(calls):
                got = f"{len(results)} results" if isinstance(results, Sequence) else type(results).__name__
                raise TypeError(f"{HANDLE_QUOTAS} answered {got} for {len(calls)} quotas")
        except Exception as e:
            for call in calls:
                self._quota_failed(call, e)
            return
        for call, result in zip(calls, results, strict=True):
            self._count(dest, "ok")
            call.result = result

    def _quota_failed(self, call: _QuotaCall, e: Exception) -> None:
        # Mixer: a failed quota dispatch leaves the grant at 0 and the call goes on (MIXER.md 8.4).
        self._count(call.destination, "error")
        handler = call.destination.handler.fqn
        _log.warning("quota %s: handler %s failed: %s: %s", call.name, handler, type(e).__name__, e)
        call.failed = True

    def _quota_outcome(self, name: str, plan: _QuotaPlan) -> QuotaOutcome:
        answer: QuotaResult | None = None
        failed = plan.failed
        for call in plan.calls:
            if call.failed:
                failed = True
                continue
            if answer is None:
                answer = call.result
            else:
                _log.warning("quota %s: answered by more than one handler; the first answer is used", name)
        refs = plan.references
        request = plan.request
        if answer is None:
            if failed:
                return QuotaOutcome(0, DEFAULT_VALID_DURATION, references=refs)
            return QuotaOutcome(request.amount, DEFAULT_VALID_DURATION, references=refs)
        if not isinstance(answer, QuotaResult):
            _log.warning("quota %s: handler returned %s, not a QuotaResult", name, type(answer).__name__)
            return QuotaOutcome(0, DEFAULT_VALID_DURATION, references=refs)
        return QuotaOutcome(
            answer.granted_amount, answer.valid_duration, int(answer.status), answer.message, references=refs
        )

    # -- attribute generation -------------------------------------------------------------------

    async def _preprocess(self, routes: Routes, bag: AttributeBag, timeout: float | None) -> None:
        """Run the attribute generators and merge their output under the request (MIXER.md 6.3)."""
        for dest in routes.generators:
            for group in dest.groups:
                if not self._matches(group.match, group.rule, bag):
                    continue
                for builder in group.instances:
                    try:
                        output = dest.method(builder.build(bag))
                        if dest.is_async:
                            output = await asyncio.wait_for(output, self._deadline(timeout))
                        generated = _bind(builder.template.output_prefix, builder.bindings, output)
                    except Exception as e:
                        self._stats.generator_failures += 1
                        self._count(dest, "error")
                        raise DispatchError(
                            f"preprocessing attributes failed: {dest.handler.fqn}: {e}"
                        ) from e
                    self._count(dest, "ok")
                    bag.merge_under(generated)

    # -- Report ---------------------------------------------------------------------------------

    async def report(self, bags: Sequence[AttributeBag]) -> None:
        table = self._source.table
        table.inflight += 1
        try:
            await self._report(table, bags)
        finally:
            table.inflight -= 1

    async def _report(self, table: RoutingTable, bags: Sequence[AttributeBag]) -> None:
        # Instances are buffered per destination (handler x template) across the request's bags: one
        # call per destination (MIXER.md 9), also when the bags route through different namespaces.
        buffers: dict[tuple[str, str], tuple[Destination, list[Any]]] = {}
        errors: list[str] = []
        for bag in bags:
            routes = table.routes(bag)
            if routes.generators:
                try:
                    await self._preprocess(routes, bag, None)
                except DispatchError as e:
                    errors.append(str(e))
                    continue
                routes = table.routes(bag)
            for dest in routes.report:
                for group in dest.groups:
                    if not self._matches(group.match, group.rule, bag):
                        continue
                    for builder in group.instances:
                        try:
                            instance = builder.build(bag)
                        except Exception as e:
                            self._stats.instance_errors += 1
                            errors.append(f"instance {builder.fqn}: {e}")
                            continue
                        key = (dest.handler.fqn, dest.template.name)
                        buffers.setdefault(key, (dest, []))[1].append(instance)
        pending: list[tuple[Destination, Awaitable[Any]]] = []
        for dest, instances in buffers.values():
            try:
                answer = dest.method(instances)
            except HandlerUnavailable:
                # Its build failed (logged then): counted, but no reason to fail every Report for it;
                # the other handlers' instances were delivered (Mixer left such handlers out too).
                self._count(dest, "unavailable")
                continue
            except Exception as e:
                self._count(dest, "error")
                errors.append(f"{dest.handler.fqn}: {type(e).__name__}: {e}")
                continue
            if dest.is_async:
                pending.append((dest, answer))
            else:
                self._count(dest, "ok")
        if pending:
            await self._gather(pending, self._timeout, [], errors)
        if errors:
            raise DispatchError("; ".join(errors))


#: A handler's `handle_quotas` method and whether it must be awaited.
_Batch = tuple[Callable[..., Any], bool]


@dataclass(slots=True)
class _QuotaCall:
    """One quota instance sent to one handler, and what came of it."""

    name: str
    destination: Destination
    instance: Any
    args: QuotaArgs
    result: Any = None
    failed: bool = False


@dataclass(slots=True)
class _QuotaPlan:
    """One quota of a Check: the calls made for it and the references its matches and instances read."""

    request: QuotaRequest
    calls: list[_QuotaCall] = field(default_factory=list)
    failed: bool = False  # an instance could not be built
    references: RawReferences = ()


def _bind(prefix: str, bindings: Sequence[tuple[str, Any]], output: Any) -> dict[str, Any]:
    """Map a generator's output through the instance's attribute bindings."""
    if not isinstance(output, Mapping):
        raise TypeError(f"the generator returned {type(output).__name__}, not a mapping of output fields")
    out_bag = AttributeBag.wrap({prefix + k: v for k, v in output.items() if v is not None})
    return {attribute: expression.evaluate(out_bag) for attribute, expression in bindings}


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


def _with_direct_response(outcome: CheckOutcome, status: int, direct: Any) -> CheckOutcome:
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
