"""Quota after an allowed Check (MIXER.md 8.4): which handlers each quota goes to, what they are asked
(amount, best effort, the dedup id), what a failure grants, several handlers for one quota, one batch
call per handler, each quota's own references, and planning without charging."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from runtime_rig import Rig, fqn, handler, instance, rule, run

from mixerd.adapter import AdapterInfo, Code, Duration, Env, QuotaArgs, QuotaResult
from mixerd.dispatch import DEFAULT_VALID_DURATION, QuotaRequest
from mixerd.runtime.trace import QUOTA, HandlerCalled, Trace

S = 1_000_000_000
COUNT = instance("requestcount", "quota", dimensions={"user": 'source.name | "anyone"'})
BY_USER = instance("byuser", "quota", dimensions={"user": "source.name"})  # fails without source.name


def _grants(outcome: Any) -> dict[str, tuple[int, int, int]]:
    return {n: (q.granted_amount, q.valid_duration, q.status_code) for n, q in outcome.quotas.items()}


@dataclass(frozen=True)
class Case:
    id: str
    docs: list[dict[str, Any]]
    quotas: dict[str, QuotaRequest]
    grants: dict[str, tuple[int, int, int]]
    calls: list[tuple[str, QuotaArgs]]  # (handler name, what it was asked), in order
    attributes: Mapping[str, Any] | None = None


MINUTE = 60 * S
CASES = [
    Case(
        "a quota no rule routes is granted in full",
        [handler("q"), COUNT, rule("r", [("q", ["requestcount"])])],
        {"other": QuotaRequest(5)},
        {"other": (5, DEFAULT_VALID_DURATION, 0)},
        [],
    ),
    Case(
        "the handler's grant and validity",
        [handler("q", quotaGrant=3, quotaValidDuration="5s"), COUNT, rule("r", [("q", ["requestcount"])])],
        {"requestcount": QuotaRequest(5)},
        {"requestcount": (3, 5 * S, 0)},
        [("q", QuotaArgs(5, False, "d1requestcount"))],
    ),
    Case(
        "best effort and the dedup id (the Check's, then the quota's name) reach the handler",
        [handler("q"), COUNT, rule("r", [("q", ["requestcount"])])],
        {"RequestCount": QuotaRequest(2, best_effort=True)},
        {"RequestCount": (2, MINUTE, 0)},
        [("q", QuotaArgs(2, True, "d1RequestCount"))],
    ),
    Case(
        "a failing handler grants 0 and the Check goes on",
        [handler("q", fail="redis down"), COUNT, rule("r", [("q", ["requestcount"])])],
        {"requestcount": QuotaRequest(5)},
        {"requestcount": (0, DEFAULT_VALID_DURATION, 0)},
        [("q", QuotaArgs(5, False, "d1requestcount"))],
    ),
    Case(
        "an instance that cannot be built grants 0, without a call",
        [handler("q"), BY_USER, rule("r", [("q", ["byuser"])])],
        {"byuser": QuotaRequest(5)},
        {"byuser": (0, DEFAULT_VALID_DURATION, 0)},
        [],
    ),
    Case(
        "a rule whose match fails does not route it: granted in full",
        [handler("q", quotaGrant=0), COUNT, rule("r", [("q", ["requestcount"])], match='source.name == "x"')],
        {"requestcount": QuotaRequest(5)},
        {"requestcount": (5, DEFAULT_VALID_DURATION, 0)},
        [],
        {"source.name": "y"},
    ),
    Case(
        "several handlers for one quota: every one is asked, the first answer counts",
        [handler("q1", quotaGrant=1), handler("q2", quotaGrant=2), COUNT],
        {"requestcount": QuotaRequest(5)},
        {"requestcount": (1, MINUTE, 0)},
        [("q1", QuotaArgs(5, False, "d1requestcount")), ("q2", QuotaArgs(5, False, "d1requestcount"))],
    ),
    Case(
        "several handlers, the first failing: the other's answer counts",
        [handler("q1", fail="down"), handler("q2", quotaGrant=2), COUNT],
        {"requestcount": QuotaRequest(5)},
        {"requestcount": (2, MINUTE, 0)},
        [("q1", QuotaArgs(5, False, "d1requestcount")), ("q2", QuotaArgs(5, False, "d1requestcount"))],
    ),
    Case(
        "a quota past its deadline grants 0",
        [handler("q", delay="1s"), COUNT, rule("r", [("q", ["requestcount"])])],
        {"requestcount": QuotaRequest(5)},
        {"requestcount": (0, DEFAULT_VALID_DURATION, 0)},
        [],  # cancelled before it answered, so the spy never recorded it
    ),
]
for _case in CASES[-3:-1]:
    _case.docs.append(rule("both", [("q1", ["requestcount"]), ("q2", ["requestcount"])]))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_quota_allocation(tmp_path: Path, case: Case) -> None:
    async def scenario(rig: Rig) -> None:
        outcome, _ = await rig.check(case.attributes, case.quotas, "d1", timeout=0.05)
        assert outcome.status_code == 0
        assert _grants(outcome) == case.grants
        calls = rig.recorder.take()
        assert [(c.handler, c.quota) for c in calls] == [(fqn(h, "handler"), a) for h, a in case.calls]
        assert all(c.template == "quota" for c in calls)

    run(tmp_path, case.docs, scenario)


def test_a_denied_check_asks_no_quota(tmp_path: Path) -> None:
    docs = [
        handler("deny", checkStatus=int(Code.PERMISSION_DENIED)),
        handler("q"),
        instance("nothing", "checknothing"),
        COUNT,
        rule("r", [("deny", ["nothing"]), ("q", ["requestcount"])]),
    ]

    async def scenario(rig: Rig) -> None:
        outcome, _ = await rig.check({}, {"requestcount": QuotaRequest(1)})
        assert outcome.status_code == Code.PERMISSION_DENIED and outcome.quotas == {}
        assert [c.template for c in rig.recorder.take()] == ["checknothing"]

    run(tmp_path, docs, scenario)


def test_each_quota_has_the_references_of_its_own_rules(tmp_path: Path) -> None:
    docs = [
        handler("s"),
        handler("q"),
        instance("nothing", "checknothing"),
        instance("a", "quota"),
        instance("b", "quota"),
        rule("check", [("s", ["nothing"])], match='request.path == "/"'),
        rule("qa", [("q", ["a"])], match='source.name == "x"'),
        rule("qb", [("q", ["b"])], match='destination.name == "y"'),
    ]

    async def scenario(rig: Rig) -> None:
        attributes = {"request.path": "/", "source.name": "x", "destination.name": "y"}
        outcome, _ = await rig.check(attributes, {"a": QuotaRequest(1), "b": QuotaRequest(1)})
        names = {n: sorted(r[0] for r in q.references or ()) for n, q in outcome.quotas.items()}
        # the precondition's references are what the check rules read, the quotas' what theirs read
        assert sorted(r[0] for r in outcome.references or ()) == ["request.path"]
        assert names == {"a": ["source.name"], "b": ["destination.name"]}

    run(tmp_path, docs, scenario)


# -- one batch call per handler ----------------------------------------------------------------------------


@dataclass
class _Params:
    answers: int = -1  # how many results to answer (-1: one per call)


class _Batching:
    """A quota handler with `handle_quotas`: grants each call its amount times 10."""

    def __init__(self, env: Env, batches: list[list[tuple[str, QuotaArgs]]]) -> None:
        self.params: _Params = env.params
        self.batches = batches

    def handle_quota(self, instance: Any, args: QuotaArgs) -> QuotaResult:
        raise AssertionError("a batching handler gets handle_quotas")

    async def handle_quotas(self, calls: Sequence[tuple[Any, QuotaArgs]]) -> list[QuotaResult]:
        self.batches.append([(i.name, a) for i, a in calls])
        results = [QuotaResult(granted_amount=a.amount * 10, valid_duration=Duration(S)) for _, a in calls]
        return results if self.params.answers < 0 else results[: self.params.answers]


def _batching(batches: list[list[tuple[str, QuotaArgs]]]) -> dict[str, AdapterInfo]:
    build = lambda env: _Batching(env, batches)  # noqa: E731
    return {"batching": AdapterInfo("batching", ("quota",), _Params, build)}


def _batch_docs(**params: Any) -> list[dict[str, Any]]:
    return [
        handler("b", adapter="batching", **params),
        handler("q", quotaGrant=1),
        instance("one", "quota"),
        instance("two", "quota"),
        rule("r", [("b", ["one", "two"]), ("q", ["two"])]),
    ]


def test_a_batching_handler_gets_all_of_a_checks_quotas_in_one_call(tmp_path: Path) -> None:
    batches: list[list[tuple[str, QuotaArgs]]] = []

    async def scenario(rig: Rig) -> None:
        outcome, _ = await rig.check({}, {"one": QuotaRequest(1), "two": QuotaRequest(2, True)}, "d")
        assert _grants(outcome) == {"one": (10, S, 0), "two": (20, S, 0)}  # b answers two first
        assert batches == [
            [
                (fqn("one", "instance"), QuotaArgs(1, False, "done")),
                (fqn("two", "instance"), QuotaArgs(2, True, "dtwo")),
            ]
        ]
        assert [c.handler for c in rig.recorder.take()] == [fqn("q", "handler")]  # the other, as usual

    run(tmp_path, _batch_docs(), scenario, adapters=_batching(batches))


def test_a_batch_answered_with_the_wrong_number_of_results_grants_0(tmp_path: Path) -> None:
    async def scenario(rig: Rig) -> None:
        outcome, _ = await rig.check({}, {"one": QuotaRequest(1), "two": QuotaRequest(2)})
        assert _grants(outcome) == {"one": (0, DEFAULT_VALID_DURATION, 0), "two": (1, MINUTE, 0)}
        assert rig.runtime.stats.dispatches[(fqn("b", "handler"), "quota", "error")] == 2

    run(tmp_path, _batch_docs(answers=1), scenario, adapters=_batching([]))


# -- planning without charging ---------------------------------------------------------------------------


def test_uncharged_quotas_are_planned_and_traced_but_not_asked(tmp_path: Path) -> None:
    docs = [handler("q"), COUNT, BY_USER, rule("r", [("q", ["requestcount", "byuser"])])]

    async def scenario(rig: Rig) -> None:
        trace = Trace()
        quotas = {"requestcount": QuotaRequest(4), "byuser": QuotaRequest(1)}
        outcome, _ = await rig.check({}, quotas, "d", trace=trace, charge=False)
        assert outcome.status_code == 0 and outcome.quotas == {}
        assert rig.recorder.take() == []
        calls = [e for e in trace.events if isinstance(e, HandlerCalled)]
        q, r = fqn("q", "handler"), fqn("r", "rule")
        assert [(e.step, e.handler, e.rule, e.instances, e.made, e.error) for e in calls] == [
            (QUOTA, q, r, (fqn("byuser", "instance"),), False, "instance: lookup failed: 'source.name'"),
            (QUOTA, q, r, (fqn("requestcount", "instance"),), False, ""),
        ]
        # charged, the same trace shows the answer
        trace = Trace()
        await rig.check({}, {"requestcount": QuotaRequest(4)}, "d", trace=trace)
        [called] = [e for e in trace.events if isinstance(e, HandlerCalled)]
        assert (called.made, called.answer) == (True, QuotaResult(4, Duration(MINUTE)))

    run(tmp_path, docs, scenario)
