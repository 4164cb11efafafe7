"""A config change swaps the routing table whole (controller.Runtime): unchanged handlers are kept,
replaced ones are closed once the requests that may use them are done (or the drain timeout passes), a
handler whose build failed stays unavailable and fails each variety its own way, and a rejected config
changes nothing. In one process with the spy adapter and an injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from runtime_rig import START, Rig, fqn, handler, instance, rule, run, start

from mixerd.adapter import AdapterInfo, CheckResult, Env, QuotaArgs, QuotaResult
from mixerd.dispatch import DispatchError, QuotaRequest
from mixerd.runtime.trace import REPORT, HandlerCalled, Trace

NOTHING = instance("nothing", "checknothing")
SECOND = 1_000_000_000


def _spies(one: str, two: str) -> list[dict[str, Any]]:
    return [
        handler("one", checkMessage=one),
        handler("two", checkMessage=two),
        NOTHING,
        rule("r", [("one", ["nothing"]), ("two", ["nothing"])]),
    ]


async def _until(condition: Callable[[], bool], seconds: float = 2.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_unchanged_handlers_are_kept_and_replaced_ones_closed(tmp_path: Path) -> None:
    async def scenario(rig: Rig) -> None:
        one, two = rig.handler("one"), rig.handler("two")
        assert (rig.runtime.generation, rig.runtime.loaded_at) == (1, START)
        rig.clock.advance(30 * SECOND)
        await rig.load(_spies("a", "b-changed"))
        assert rig.handler("one") is one and rig.handler("two") is not two
        assert (rig.runtime.generation, rig.runtime.loaded_at) == (2, START + 30 * SECOND)
        await _until(lambda: two.closed)
        assert not one.closed and rig.recorder.closed == [fqn("two", "handler")]
        stats = rig.runtime.stats
        assert (stats.handler_builds, stats.handler_reuses, stats.handler_closes) == (3, 1, 1)
        assert (stats.config_loads, stats.config_rejections) == (2, 0)
        # the clock the runtime was given is every handler's clock too
        assert rig.handler("two").env.clock is rig.clock

    run(tmp_path, _spies("a", "b"), scenario)


def test_a_rejected_config_changes_nothing(tmp_path: Path) -> None:
    async def scenario(rig: Rig) -> None:
        table = rig.runtime.table
        (tmp_path / "config.yaml").write_text(
            "kind: rule\nmetadata: {name: r}\nspec: {actions: [{handler: nobody}]}\n"
        )
        rig.clock.advance(5 * SECOND)
        assert await rig.runtime.reload() is False
        assert rig.runtime.table is table and rig.runtime.generation == 1
        assert rig.runtime.last_rejection is not None and rig.runtime.last_rejection_at == START + 5 * SECOND
        assert (rig.runtime.stats.config_rejections, rig.recorder.closed) == (1, [])

    run(tmp_path, _spies("a", "b"), scenario)


# -- draining ---------------------------------------------------------------------------------------


@dataclass
class _GateParams:
    tag: str = ""


class _Gated:
    """Answers a check once the test opens its gate; records its close."""

    def __init__(self, env: Env, gate: _Gate) -> None:
        self.env = env
        self.gate = gate

    async def handle_checknothing(self, instance: Any) -> CheckResult:
        self.gate.entered.set()
        await self.gate.open.wait()
        if self.env.handler in self.gate.closed:
            raise RuntimeError("called after close")
        return CheckResult()

    def close(self) -> None:
        self.gate.closed.append(self.env.handler)


class _Gate:
    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.open = asyncio.Event()
        self.closed: list[str] = []

    def adapter(self) -> dict[str, AdapterInfo]:
        info = AdapterInfo("gated", ("checknothing",), _GateParams, lambda env: _Gated(env, self))
        return {"gated": info}


def _gated(tag: str, extra: str = "") -> list[dict[str, Any]]:
    docs = [handler("gated", adapter="gated", tag=tag), NOTHING, rule("r", [("gated", ["nothing"])])]
    if extra:
        docs.append(handler("extra", checkMessage=extra))
    return docs


def _gate_run(tmp_path: Path, scenario: Callable[[Rig, _Gate], Any], drain_timeout: float = 10.0) -> None:
    async def with_gate() -> None:
        gate = _Gate()
        rig = await start(tmp_path, _gated("v1"), gate.adapter(), drain_timeout)
        try:
            await scenario(rig, gate)
        finally:
            gate.open.set()
            await rig.runtime.close()

    asyncio.run(with_gate())


def test_a_replaced_handler_is_closed_only_after_its_requests(tmp_path: Path) -> None:
    async def scenario(rig: Rig, gate: _Gate) -> None:
        old = rig.handler("gated")
        request = asyncio.ensure_future(rig.check({}))
        await gate.entered.wait()  # in flight on the first table
        await rig.load(_gated("v2"))
        assert rig.handler("gated") is not old
        await asyncio.sleep(0.1)
        assert gate.closed == []  # its request is still running
        gate.open.set()
        outcome, _ = await request
        assert outcome.status_code == 0  # answered by a handler that was not closed under it
        await _until(lambda: gate.closed == [fqn("gated", "handler")])

    _gate_run(tmp_path, scenario)


def test_a_handler_kept_then_replaced_waits_for_requests_of_the_older_table(tmp_path: Path) -> None:
    async def scenario(rig: Rig, gate: _Gate) -> None:
        request = asyncio.ensure_future(rig.check({}))
        await gate.entered.wait()  # in flight on table 1
        await rig.load(_gated("v1", extra="x"))  # table 2 keeps the gated handler
        await rig.load(_gated("v2", extra="x"))  # table 3 replaces it: table 1's request still uses it
        await asyncio.sleep(0.1)
        assert gate.closed == []
        gate.open.set()
        assert (await request)[0].status_code == 0
        await _until(lambda: gate.closed == [fqn("gated", "handler")])

    _gate_run(tmp_path, scenario)


def test_a_request_that_never_ends_holds_a_close_only_for_the_drain_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(rig: Rig, gate: _Gate) -> None:
        request = asyncio.ensure_future(rig.check({}))
        await gate.entered.wait()
        await rig.load(_gated("v2"))
        await _until(lambda: gate.closed == [fqn("gated", "handler")])
        assert "still has 1 requests in flight" in caplog.text
        request.cancel()

    _gate_run(tmp_path, scenario, drain_timeout=0.05)


# -- a handler whose build failed ------------------------------------------------------------------------


@dataclass
class _Params:
    pass


class _Broken:
    """An adapter whose builds fail while `down`."""

    def __init__(self) -> None:
        self.down = True

    def build(self, env: Env) -> Any:
        if self.down:
            raise OSError("backend down")
        return _Working()

    def adapter(self) -> dict[str, AdapterInfo]:
        return {
            "broken": AdapterInfo("broken", ("checknothing", "quota", "reportnothing"), _Params, self.build)
        }


class _Working:
    def handle_checknothing(self, instance: Any) -> CheckResult:
        return CheckResult()

    def handle_quota(self, instance: Any, args: QuotaArgs) -> QuotaResult:
        return QuotaResult(granted_amount=args.amount)

    def handle_reportnothing(self, instances: Any) -> None:
        return None


BROKEN = [
    handler("broken", adapter="broken"),
    handler("spy"),
    NOTHING,
    instance("count", "quota"),
    instance("log", "reportnothing"),
    rule("check", [("broken", ["nothing"])], match='request.path == "/check"'),
    rule("quota", [("broken", ["count"])]),
    rule("report", [("broken", ["log"]), ("spy", ["log"])]),
]


def test_a_handler_whose_build_failed_is_unavailable_to_every_variety(tmp_path: Path) -> None:
    broken = _Broken()

    async def scenario(rig: Rig) -> None:
        built = rig.handler("broken")
        assert not built.available and built.failure == "build failed: OSError: backend down"
        # Check: fails whole
        with pytest.raises(DispatchError) as failed:
            await rig.check({"request.path": "/check"})
        assert str(failed.value) == (
            "broken.handler.istio-system: HandlerUnavailable: handler is unavailable: build failed: "
            "OSError: backend down"
        )
        # quota: granted 0, the Check goes on
        outcome, _ = await rig.check({"request.path": "/"}, {"count": QuotaRequest(3)})
        assert (outcome.status_code, outcome.quotas["count"].granted_amount) == (0, 0)
        # Report: counted, not an error; the other handler still gets its instances
        trace = Trace()
        await rig.report({"request.path": "/"}, trace=trace)
        assert [c.handler for c in rig.recorder.take()] == [fqn("spy", "handler")]
        assert rig.runtime.stats.dispatches[(fqn("broken", "handler"), "reportnothing", "unavailable")] == 1
        [unavailable] = [e for e in trace.events if isinstance(e, HandlerCalled) and e.error]
        assert (unavailable.step, unavailable.handler) == (REPORT, fqn("broken", "handler"))
        # the same config again: an unavailable handler is built again, not kept
        broken.down = False
        await rig.load(BROKEN)
        assert rig.handler("broken").available and rig.handler("broken") is not built
        assert (await rig.check({"request.path": "/check"}))[0].status_code == 0
        stats = rig.runtime.stats
        assert (stats.handler_build_failures, stats.handler_reuses) == (1, 1)  # the spy was kept

    run(tmp_path, BROKEN, scenario, adapters=broken.adapter())
