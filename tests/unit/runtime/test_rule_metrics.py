"""The runtime's per-rule and per-handler metrics: a rule's match counted once per dispatch step however
many handlers it sends to, match errors per rule, each handler call timed, and the counts of rules and
handlers a config change removed forgotten (the others kept)."""

from __future__ import annotations

from pathlib import Path

from runtime_rig import Rig, fqn, handler, instance, rule, run

from mixerd.adapter import Code
from mixerd.runtime.stats import RuntimeCollector

DENY = int(Code.PERMISSION_DENIED)

DOCS = [
    handler("a"),
    handler("b", checkStatus=DENY),
    instance("nothing", "checknothing"),
    instance("told", "reportnothing"),
    # One rule, two check handlers and a report handler: one count per step it is evaluated in.
    rule("both", [("a", ["nothing", "told"]), ("b", ["nothing"])], match='source.name == "web"'),
    rule("never", [("a", ["nothing"])], match='source.name == "nobody"'),
    rule("broken", [("a", ["nothing"])], match="request.size > 10"),  # request.size is never sent
    # A check rule with header operations is counted by the check step alone; a header-only rule once.
    rule(
        "tagged",
        [("a", ["nothing"])],
        requestHeaderOperations=[{"name": "x-tag", "values": ['"t"']}],
    ),
    rule("headers-only", requestHeaderOperations=[{"name": "x-more", "values": ['"m"']}]),
]


def _rule(name: str) -> str:
    return fqn(name, "rule")


def test_a_rule_counts_once_per_step_and_its_errors_alone(tmp_path: Path) -> None:
    async def scenario(rig: Rig) -> None:
        stats = rig.runtime.stats
        await rig.check({"source.name": "web"})  # denied by b: the header rules do not run
        await rig.check({"source.name": "app"})  # allowed: header rules run
        await rig.report({"source.name": "web"}, {"source.name": "web"})
        assert stats.rule_matches == {
            _rule("both"): 1 + 2,  # one Check, two Report bags
            _rule("tagged"): 2,
            _rule("headers-only"): 1,
        }
        assert stats.rule_errors == {_rule("broken"): 2}
        assert stats.match_errors == 2

    run(tmp_path, DOCS, scenario)


def test_every_handler_call_is_timed(tmp_path: Path) -> None:
    async def scenario(rig: Rig) -> None:
        await rig.check({"source.name": "web"})
        await rig.report({"source.name": "web"}, {"source.name": "web"})
        timed = {key: h.count for key, h in rig.runtime.stats.handler_seconds.by_labels.items()}
        a, b = fqn("a", "handler"), fqn("b", "handler")
        # a: `both` and `tagged` each send it one check instance; one Report call for both bags.
        assert timed == {(a, "checknothing"): 2, (b, "checknothing"): 1, (a, "reportnothing"): 1}
        assert all(h.sum >= 0 for h in rig.runtime.stats.handler_seconds.by_labels.values())

    run(tmp_path, DOCS, scenario)


def test_a_config_change_forgets_what_it_removed(tmp_path: Path) -> None:
    async def scenario(rig: Rig) -> None:
        stats = rig.runtime.stats
        await rig.check({"source.name": "web"})
        await rig.load([d for d in DOCS if d["metadata"]["name"] not in ("both", "b")])
        assert _rule("both") not in stats.rule_matches
        assert stats.rule_matches[_rule("tagged")] == 1  # kept across the reload
        assert stats.rule_errors == {_rule("broken"): 1}
        assert {key[0] for key in stats.handler_seconds.by_labels} == {fqn("a", "handler")}

    run(tmp_path, DOCS, scenario)


def test_the_collector_publishes_rules_and_durations(tmp_path: Path) -> None:
    async def scenario(rig: Rig) -> None:
        await rig.check({"source.name": "web"})
        families = {f.name: f for f in RuntimeCollector(rig.runtime.stats).collect()}
        matches = {s.labels["rule"]: s.value for s in families["mixerd_rule_matches"].samples}
        assert matches == {_rule("both"): 1, _rule("tagged"): 1}
        errors = {s.labels["rule"]: s.value for s in families["mixerd_rule_errors"].samples}
        assert errors == {_rule("broken"): 1}
        samples = families["mixerd_adapter_dispatch_duration_seconds"].samples
        counts = {
            (s.labels["handler"], s.labels["template"]): s.value for s in samples if s.name.endswith("_count")
        }
        assert counts == {(fqn("a", "handler"), "checknothing"): 2, (fqn("b", "handler"), "checknothing"): 1}
        infinite = [s.value for s in samples if s.labels.get("le") == "+Inf"]
        assert sorted(infinite) == [1, 2]

    run(tmp_path, DOCS, scenario)
