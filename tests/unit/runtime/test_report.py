"""Report (MIXER.md 9): a Report's instances are buffered per destination across its bags (also bags of
different namespaces) and delivered in one call each; what fails is reported once the rest is delivered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from runtime_rig import Rig, fqn, handler, instance, rule, run

from mixerd.dispatch import DispatchError
from mixerd.runtime.trace import REPORT, HandlerCalled, Trace

LOG = instance("log", "logentry", severity='"info"', variables={"id": "request.id"})
DOCS = [
    handler("spy"),
    handler("other"),
    LOG,
    instance("count", "metric", value="1"),
    rule("all", [("spy", ["log", "count"]), ("other", ["log"])]),
    handler("local", namespace="ns1"),
    instance("ns1-log", "logentry", namespace="ns1", severity='"info"', variables={"id": "request.id"}),
    rule("ns1", [("spy.istio-system", ["ns1-log"]), ("local", ["ns1-log"])], namespace="ns1"),
]


def _ids(instances: tuple[Any, ...]) -> list[Any]:
    return [i.variables["id"] for i in instances if hasattr(i, "variables")]


def test_one_call_per_destination_for_all_the_bags(tmp_path: Path) -> None:
    async def scenario(rig: Rig) -> None:
        trace = Trace()
        await rig.report(
            {"request.id": "1"},
            {"request.id": "2", "destination.namespace": "ns1"},
            {"request.id": "3"},
            trace=trace,
        )
        calls = [
            (c.handler.split(".")[0], c.template, _ids(c.instances), len(c.instances))
            for c in rig.recorder.take()
        ]
        assert calls == [
            ("spy", "logentry", ["1", "2", "2", "3"], 4),  # ns1's bag adds its own instance to the same call
            ("spy", "metric", [], 3),
            ("other", "logentry", ["1", "2", "3"], 3),
            ("local", "logentry", ["2"], 1),
        ]
        [first, *_] = [e for e in trace.events if isinstance(e, HandlerCalled)]
        log, ns1_log = fqn("log", "instance"), fqn("ns1-log", "instance", "ns1")
        assert (first.step, first.rule, first.instances) == (REPORT, "", (log, log, ns1_log, log))

    run(tmp_path, DOCS, scenario)


@pytest.mark.parametrize(
    ("extra", "bags", "message", "delivered"),
    [
        (
            [handler("bad", fail="sink down"), rule("bad", [("bad", ["log"])])],
            [{"request.id": "1"}],
            "bad.handler.istio-system: RuntimeError: sink down",
            ["spy", "spy", "other"],
        ),
        (
            [instance("needs", "logentry", severity="source.name"), rule("needs", [("other", ["needs"])])],
            [{"request.id": "1", "source.name": "x"}, {"request.id": "2"}, {"request.id": "3"}],
            "instance needs.instance.istio-system: lookup failed: 'source.name'; "
            "instance needs.instance.istio-system: lookup failed: 'source.name'",
            ["spy", "spy", "other"],
        ),
    ],
    ids=["a handler fails", "instances fail in some bags"],
)
def test_failures_are_reported_after_the_rest_is_delivered(
    tmp_path: Path,
    extra: list[dict[str, Any]],
    bags: list[dict[str, Any]],
    message: str,
    delivered: list[str],
) -> None:
    async def scenario(rig: Rig) -> None:
        with pytest.raises(DispatchError) as failed:
            await rig.report(*bags)
        assert str(failed.value) == message
        assert [
            c.handler.split(".")[0] for c in rig.recorder.take() if c.handler != fqn("bad", "handler")
        ] == delivered

    run(tmp_path, DOCS[:5] + extra, scenario)
