"""The routing table (MIXER.md 5.5): templates split by variety into destinations (one per handler and
template, a group per rule), a namespace's routes (the default namespace's rules first, then its own),
the namespace a request belongs to, and rule matches that cannot be evaluated (counted as false)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from runtime_rig import Rig, fqn, handler, instance, rule, run

from mixerd.adapter import AdapterInfo
from mixerd.attribute import AttributeBag, Condition, Reference
from mixerd.dispatch import QuotaRequest
from mixerd.runtime.table import Routes
from mixerd.runtime.trace import CHECK, ERRORED, FAILED, GENERATE, HELD, QUOTA, REPORT, MatchEvaluated, Trace
from mixerd.templates import KubernetesInstance


@dataclass
class _Params:
    pass


class _Generator:
    def handle_kubernetes(self, instance: KubernetesInstance) -> Mapping[str, Any]:
        return {}


GENERATOR = {"gen": AdapterInfo("gen", ("kubernetes",), _Params, lambda env: _Generator())}


def _layout(routes: Routes) -> dict[str, Any]:
    """The routes as names: destinations with their groups (rule -> instances), quotas, header rules."""

    def dests(destinations: list[Any]) -> list[tuple[str, str, list[tuple[str, list[str]]]]]:
        return [
            (d.handler.fqn, d.template.name, [(g.rule, [i.fqn for i in g.instances]) for g in d.groups])
            for d in destinations
        ]

    return {
        "check": dests(routes.check),
        "report": dests(routes.report),
        "generators": dests(routes.generators),
        "quotas": {
            name: [(q.destination.handler.fqn, q.rule, q.instance.fqn) for q in qs]
            for name, qs in routes.quotas.items()
        },
        "header_rules": [h.rule for h in routes.header_rules],
    }


def test_templates_are_split_by_variety_into_one_destination_per_handler_and_template(tmp_path: Path) -> None:
    docs = [
        handler("spy"),
        handler("other"),
        handler("gen", adapter="gen"),
        instance("nothing", "checknothing"),
        instance("entry", "listentry", value="source.name"),
        instance("log", "reportnothing"),
        instance("RequestCount", "quota"),
        instance("attrs", "kubernetes"),
        rule("first", [("spy", ["nothing", "entry", "log"]), ("other", ["nothing"])]),
        rule(
            "second", [("spy", ["nothing", "RequestCount"]), ("gen", ["attrs"])], match='source.name == "x"'
        ),
        rule("headers", responseHeaderOperations=[{"name": "x", "values": ['"y"']}]),
    ]

    async def scenario(rig: Rig) -> None:
        spy, other, gen = fqn("spy", "handler"), fqn("other", "handler"), fqn("gen", "handler")
        first, second = fqn("first", "rule"), fqn("second", "rule")
        nothing = fqn("nothing", "instance")
        assert _layout(rig.runtime.table.default) == {
            "check": [
                (spy, "checknothing", [(first, [nothing]), (second, [nothing])]),
                (spy, "listentry", [(first, [fqn("entry", "instance")])]),
                (other, "checknothing", [(first, [nothing])]),
            ],
            "report": [(spy, "reportnothing", [(first, [fqn("log", "instance")])])],
            "generators": [(gen, "kubernetes", [(second, [fqn("attrs", "instance")])])],
            "quotas": {
                "requestcount": [(spy, second, fqn("RequestCount", "instance"))]
            },  # by lower-case name
            "header_rules": [fqn("headers", "rule")],
        }
        assert rig.runtime.table.by_namespace == {}

    run(tmp_path, docs, scenario, adapters=GENERATOR)


# -- namespaces ----------------------------------------------------------------------------------------

NAMESPACED = [
    handler("spy"),
    instance("everyone", "checknothing"),
    rule("everyone", [("spy", ["everyone"])]),
    handler("local", namespace="ns1"),
    instance("ns1-only", "checknothing", namespace="ns1"),
    rule("ns1-rule", [("local", ["ns1-only"]), ("spy.istio-system", ["ns1-only"])], namespace="ns1"),
]
EVERYONE = [fqn("everyone", "rule")]
NS1 = [fqn("everyone", "rule"), fqn("ns1-rule", "rule", "ns1")]  # the default namespace's rules first

KIND, DST, SRC = "context.reporter.kind", "destination.namespace", "source.namespace"
NAMESPACE_CASES = [
    (
        "no reporter kind: the destination's",
        {DST: "ns1", SRC: "ns2"},
        NS1,
        [(KIND, "ABSENCE"), (DST, "EXACT")],
    ),
    ("inbound: the destination's", {KIND: "inbound", DST: "ns1"}, NS1, [(KIND, "EXACT"), (DST, "EXACT")]),
    (
        "outbound: the source's",
        {KIND: "outbound", SRC: "ns1", DST: "ns2"},
        NS1,
        [(KIND, "EXACT"), (SRC, "EXACT")],
    ),
    (
        "outbound to ns1 is not ns1's",
        {KIND: "outbound", SRC: "ns2", DST: "ns1"},
        EVERYONE,
        [(KIND, "EXACT"), (SRC, "EXACT")],
    ),
    ("another kind: no namespace", {KIND: "gateway", DST: "ns1", SRC: "ns1"}, EVERYONE, [(KIND, "EXACT")]),
    ("a namespace without rules: the default's", {DST: "ns9"}, EVERYONE, [(KIND, "ABSENCE"), (DST, "EXACT")]),
    ("no namespace at all", {}, EVERYONE, [(KIND, "ABSENCE"), (DST, "ABSENCE")]),
]


@pytest.mark.parametrize(
    ("attributes", "rules", "read"), [c[1:] for c in NAMESPACE_CASES], ids=[c[0] for c in NAMESPACE_CASES]
)
def test_the_namespace_a_request_is_routed_by(
    tmp_path: Path, attributes: dict[str, str], rules: list[str], read: list[tuple[str, str]]
) -> None:
    async def scenario(rig: Rig) -> None:
        bag = AttributeBag(attributes)
        routes = rig.runtime.table.routes(bag)
        assert list(dict.fromkeys(g.rule for d in routes.check for g in d.groups)) == rules
        assert bag.references() == [Reference(n, Condition[c]) for n, c in read]

    run(tmp_path, NAMESPACED, scenario)


def test_a_namespace_rule_may_use_a_default_namespace_handler(tmp_path: Path) -> None:
    async def scenario(rig: Rig) -> None:
        routes = rig.runtime.table.by_namespace["ns1"]
        assert [(d.handler.fqn, [g.rule for g in d.groups]) for d in routes.check] == [
            (fqn("spy", "handler"), NS1),  # one destination: the default rule's group, then ns1's
            (fqn("local", "handler", "ns1"), [fqn("ns1-rule", "rule", "ns1")]),
        ]
        await rig.check({DST: "ns1"})
        assert [(c.handler, c.instances[0].name) for c in rig.recorder.take()] == [
            (fqn("spy", "handler"), fqn("everyone", "instance")),
            (fqn("spy", "handler"), fqn("ns1-only", "instance", "ns1")),
            (fqn("local", "handler", "ns1"), fqn("ns1-only", "instance", "ns1")),
        ]

    run(tmp_path, NAMESPACED, scenario)


def test_with_rules_only_in_the_default_namespace_no_namespace_attribute_is_read(tmp_path: Path) -> None:
    async def scenario(rig: Rig) -> None:
        outcome, bag = await rig.check({KIND: "inbound", DST: "ns1"})
        assert outcome.status_code == 0 and bag.references() == []

    run(tmp_path, NAMESPACED[:3], scenario)


# -- matches that cannot be evaluated -------------------------------------------------------------------


def test_a_match_that_cannot_be_evaluated_counts_as_false_in_every_step(tmp_path: Path) -> None:
    broken = "request.size > 10"  # request.size is absent: lookup failed
    docs = [
        handler("spy"),
        handler("gen", adapter="gen"),
        instance("nothing", "checknothing"),
        instance("log", "reportnothing"),
        instance("count", "quota"),
        instance("attrs", "kubernetes"),
        rule("gen", [("gen", ["attrs"])], match=broken),
        rule("check", [("spy", ["nothing"])], match=broken),
        rule("quota", [("spy", ["count"])], match=broken),
        rule("report", [("spy", ["log"])], match=broken),
        rule("report-all", [("spy", ["log"])], match='source.name == "a"'),
    ]

    async def scenario(rig: Rig) -> None:
        trace = Trace()
        outcome, _ = await rig.check({"source.name": "a"}, {"count": QuotaRequest(3)}, trace=trace)
        assert outcome.status_code == 0 and outcome.quotas["count"].granted_amount == 3  # not routed: in full
        await rig.report({"source.name": "a"}, trace=trace)
        [report] = rig.recorder.take()
        assert (report.template, len(report.instances)) == ("reportnothing", 1)  # report-all's only
        matches = [
            (e.step, e.rule.split(".")[0], e.outcome) for e in trace.events if isinstance(e, MatchEvaluated)
        ]
        assert matches == [
            (GENERATE, "gen", ERRORED),
            (CHECK, "check", ERRORED),
            (QUOTA, "quota", ERRORED),
            (GENERATE, "gen", ERRORED),
            (REPORT, "report", ERRORED),
            (REPORT, "report-all", HELD),
        ]
        assert rig.runtime.stats.match_errors == 5

    run(tmp_path, docs, scenario, adapters=GENERATOR)


@pytest.mark.parametrize(
    ("match", "outcome"),
    [('source.name == "a"', HELD), ('source.name == "b"', FAILED), ("request.size > 1", ERRORED)],
)
def test_a_match_is_held_failed_or_errored(tmp_path: Path, match: str, outcome: str) -> None:
    docs = [
        handler("spy"),
        instance("nothing", "checknothing"),
        rule("r", [("spy", ["nothing"])], match=match),
    ]

    async def scenario(rig: Rig) -> None:
        trace = Trace()
        await rig.check({"source.name": "a"}, trace=trace)
        assert trace.events[0] == MatchEvaluated(
            CHECK, fqn("r", "rule"), outcome, "lookup failed: 'request.size'" if outcome == ERRORED else ""
        )
        assert len(rig.recorder.take()) == (outcome == HELD)

    run(tmp_path, docs, scenario)
