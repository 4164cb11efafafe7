"""Explain a decision (DESIGN.md decision 10): a request's Check, ext_authz or rate limit decision made again
as a dry run, with every step said.

A Check (Mixer's, or ext_authz's bag) goes through the runtime's own dispatcher with a `Trace` and
`charge=False`: check handlers are called (they decide without side effects, so the verdict is the real
one), quota handlers are not (each quota says what would be asked), report handlers never are (report
rules say whether they would send). The dispatcher counts into a `RuntimeStats` of its own, so an
explanation moves no metric. A rate limit request goes through the service's limiter, looking only
(explain_ratelimit.py).

The admin page runs on its own threads; `explain_in_thread` runs the explanation on the server's event
loop (where the handlers live) and waits for it. Everything is read from one routing table, the one in
force when the request arrived.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format

from ...attribute import AttributeBag
from ...dispatch import CheckOutcome, DispatchError
from ...runtime import RoutingTable, RuntimeDispatcher, RuntimeStats, Trace
from ...runtime.calls import Calls
from ...runtime.table import Routes
from ...runtime.trace import REPORT
from ..envoy.authz_response import build_response
from ..frontend import check_failed
from . import explain_trace
from .context import AdminContext
from .explain_ratelimit import explain_rate_limit
from .explain_request import EXT_AUTHZ, RATELIMIT, BadRequest, Question, read_question
from .explain_values import shown
from .redact import MASK, is_secret_name

Data = dict[str, Any]
_API = {EXT_AUTHZ: "ext_authz"}
#: Seconds beyond the adapter timeout an explanation may take before the page gives up on it.
_SLACK = 5.0


class _Pinned:
    """The one table an explanation reads (a TableSource)."""

    def __init__(self, table: RoutingTable) -> None:
        self.table = table


async def explain(question: Question, table: RoutingTable, context: AdminContext) -> Data:
    """The explanation of `question` against `table` (see the module docstring)."""
    if question.kind == RATELIMIT:
        return await explain_rate_limit(
            table, context.settings, context.clock, question.domain, question.descriptors, question.request
        )
    return await _check(question, table, context)


async def _check(question: Question, table: RoutingTable, context: AdminContext) -> Data:
    stats = RuntimeStats()  # an explanation counts nothing in the server's metrics
    dispatcher = RuntimeDispatcher(_Pinned(table), stats, context.settings.adapter_timeout)
    bag = AttributeBag(question.values)
    trace = Trace()
    outcome: CheckOutcome | None = None
    failure = ""
    try:
        outcome = await dispatcher.check(bag, question.quotas, question.dedup_id, trace=trace, charge=False)
    except DispatchError as e:
        failure = check_failed(e).message
    references = bag.reference_items()
    if outcome is not None and outcome.references is not None:
        references = outcome.references
    # From here on a copy is read, so the request's referenced attributes stay as the Check left them.
    probe = AttributeBag(bag.as_dict())
    routes = table.routes(probe)
    _report_rules(routes, probe, trace, Calls(stats))
    snapshot = table.snapshot
    allowed = outcome is not None and outcome.status_code == 0
    out: Data = {
        "api": _API.get(question.kind, "mixer_check"),
        "generation": table.generation,
        "dry_run": True,
        "namespace": _namespace(table, routes),
        "attributes": shown(question.values),
        "generated": {
            name: shown(value, name) for name, value in probe.items() if name not in question.values
        },
        "rules": explain_trace.rules(trace, snapshot, probe),
        "verdict": explain_trace.verdict(outcome) if outcome is not None else None,
        "error": {"code": "INTERNAL", "message": failure} if failure else None,
        "referenced_attributes": explain_trace.references(references),
        "quotas": explain_trace.quotas(trace, question.quotas, question.dedup_id, snapshot, probe, allowed),
    }
    if question.kind == EXT_AUTHZ and outcome is not None:
        response = json_format.MessageToDict(build_response(outcome), preserving_proto_field_name=True)
        out["response"] = _masked_headers(response)
    return out


def _report_rules(routes: Routes, probe: AttributeBag, trace: Trace, calls: Calls) -> None:
    """Trace what the request's Report would do: each report rule's match and, where it holds, the
    instances its handler would get (never sent)."""
    for dest in routes.report:
        for group in dest.groups:
            if calls.holds(group.match, group.rule, probe, REPORT, trace):
                fqns = tuple(builder.fqn for builder in group.instances)
                trace.called(REPORT, dest, group.rule, fqns, made=False)


def _namespace(table: RoutingTable, routes: Routes) -> str:
    """The namespace whose rules the request ran (with the default namespace's)."""
    for namespace, candidate in table.by_namespace.items():
        if candidate is routes:
            return namespace
    return table.snapshot.default_namespace


def _masked_headers(value: Any) -> Any:
    """An ext_authz response as data, the value of each secret header (`{key, value}`) masked."""
    if isinstance(value, list):
        return [_masked_headers(v) for v in value]
    if not isinstance(value, Mapping):
        return value
    out = {k: _masked_headers(v) for k, v in value.items()}
    if isinstance(out.get("key"), str) and "value" in out and is_secret_name(out["key"]):
        out["value"] = MASK
    return out


def explain_in_thread(context: AdminContext, body: Any) -> tuple[int, Data]:
    """(HTTP status, answer) for an explain request's parsed JSON `body`, from one of the admin page's
    threads: 200 and the explanation, 400 for a bad request, 503 without a rule engine, 504 when the
    explanation took too long."""
    runtime, loop = context.runtime, context.loop
    if runtime is None or loop is None:
        return 503, {"error": "this server runs no rule engine: there is no decision to explain"}
    table = runtime.table
    try:
        question = read_question(body, table.snapshot.manifest)
    except BadRequest as e:
        return 400, {"error": str(e)}
    future = asyncio.run_coroutine_threadsafe(explain(question, table, context), loop)
    limit = context.settings.adapter_timeout + _SLACK
    try:
        return 200, future.result(limit)
    except concurrent.futures.TimeoutError:
        future.cancel()
        return 504, {"error": f"the explanation took longer than {limit:g}s"}
