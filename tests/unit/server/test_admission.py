"""The admission core: the shedding decision from queueing-delay observations, the delay estimate from
probes, and the handler wrapping, all on an injected clock (no timing, no server)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from mixerd.server.admission import SHED_MESSAGE, Admission, Controller, DelayEstimate, _Api, _due

LIMIT = 0.040  # target 10 ms, interval 20 ms

# (observations as (seconds since start, delay in ms), whether shedding after each one)
DECISIONS: dict[str, tuple[list[tuple[float, float]], list[bool]]] = {
    "an idle queue never sheds": ([(0.0, 0), (0.1, 1), (0.2, 10)], [False, False, False]),
    "one large measurement alone never sheds (a pause of the process)": (
        [(0.0, 2), (0.3, 300), (0.301, 1)],
        [False, False, False],
    ),
    "a burst that drains within the interval sheds nothing": (
        [(0.0, 30), (0.01, 40), (0.019, 20), (0.025, 5), (0.03, 30)],
        [False, False, False, False, False],
    ),
    "above target for a whole interval is a standing queue": (
        [(0.0, 11), (0.01, 15), (0.019, 30), (0.02, 12)],
        [False, False, False, True],
    ),
    "shedding goes on while the delay stays above target": (
        [(0.0, 60), (0.02, 11), (0.03, 12), (0.04, 10)],
        [False, True, True, False],
    ),
    "back above target within an interval of draining sheds at once": (
        [(0.0, 60), (0.02, 60), (0.03, 5), (0.04, 11), (0.05, 5), (0.5, 12)],
        [False, True, False, True, False, False],
    ),
    "above target again after the interval waits a whole interval": (
        [(0.0, 60), (0.02, 60), (0.03, 5), (0.1, 12), (0.11, 12), (0.125, 12)],
        [False, True, False, False, False, True],
    ),
}


@pytest.mark.parametrize("case", DECISIONS, ids=list(DECISIONS))
def test_controller_decisions(case: str) -> None:
    observations, expected = DECISIONS[case]
    controller = Controller(LIMIT)
    got = [controller.observe(delay_ms / 1e3, at) for at, delay_ms in observations]
    assert got == expected
    assert controller.shedding == expected[-1]


def test_controller_derives_target_and_interval_from_the_limit() -> None:
    controller = Controller(0.2)
    assert (controller.target, controller.interval, controller.limit) == pytest.approx((0.05, 0.1, 0.2))
    with pytest.raises(ValueError):
        Controller(0)


def test_delay_estimate_is_the_last_round_trip_or_the_oldest_waiting_probe() -> None:
    estimate = DelayEstimate(memory=0.05)
    assert estimate.delay(1.0) == 0  # nothing measured yet
    first = estimate.sent(1.0)
    second = estimate.sent(1.02)
    assert estimate.waiting == 2
    assert estimate.delay(1.03) == pytest.approx(0.03)  # the oldest still waits: a lower bound
    estimate.answered(first, 1.035)
    assert estimate.last == pytest.approx(0.035)
    assert estimate.delay(1.036) == pytest.approx(0.035)  # the measured round trip is larger
    assert estimate.delay(1.07) == pytest.approx(0.05)  # the second has waited longer by now
    estimate.answered(second, 1.071)
    assert estimate.delay(1.08) == pytest.approx(0.051)
    assert estimate.delay(1.2) == 0  # a measurement older than `memory` is forgotten


def test_an_abandoned_probe_is_no_measurement() -> None:
    estimate = DelayEstimate(memory=1.0)
    probe = estimate.sent(0.0)
    estimate.abandoned(probe)
    estimate.answered(probe, 5.0)
    assert (estimate.waiting, estimate.last, estimate.delay(5.0)) == (0, 0, 0)


class _Context:
    """The part of grpc.aio.ServicerContext the wrapper uses."""

    def __init__(self) -> None:
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = (code, details)
        raise _Aborted


class _Aborted(Exception):
    pass


def _wrapped(admission: Admission) -> tuple[Any, Any, list[bytes]]:
    seen: list[bytes] = []

    async def check(raw: bytes, context: Any) -> bytes:
        seen.append(raw)
        return b"answer"

    async def stream(requests: Any, context: Any) -> bytes:
        return b"streamed"

    handlers = admission.wrap(
        "test.Service",
        {
            "Check": grpc.unary_unary_rpc_method_handler(check),
            "Logs": grpc.stream_unary_rpc_method_handler(stream),
        },
    )
    return handlers["Check"].unary_unary, handlers["Logs"].stream_unary, seen


def _call(behavior: Any, request: Any) -> tuple[Any, tuple[grpc.StatusCode, str] | None]:
    """The handler's answer (None when aborted) and the status it aborted with (None when it answered)."""
    context = _Context()
    try:
        return asyncio.run(behavior(request, context)), None
    except _Aborted:
        return None, context.aborted


def _counts(admission: Admission) -> dict[str, tuple[int, bool]]:
    return {api.name: (api.shed, api.controller.shedding) for api in admission.apis()}


def test_calls_pass_until_shedding_then_get_unavailable_unparsed_and_counted() -> None:
    admission = Admission(LIMIT)
    check, stream, seen = _wrapped(admission)
    assert _call(check, b"request") == (b"answer", None)
    controller = next(api.controller for api in admission.apis() if api.name == "test.Service/Check")
    controller.observe(1.0, 0.0)  # a queue of a second, standing: shed
    controller.observe(1.0, 1.0)

    shed = (None, (grpc.StatusCode.UNAVAILABLE, SHED_MESSAGE))
    assert _call(check, b"request") == shed
    assert seen == [b"request"]  # the shed call never reached the handler
    assert _call(stream, iter(())) == shed  # a new stream is refused while an API sheds
    assert _counts(admission) == {"test.Service/Check": (1, True), "test.Service/Logs": (1, False)}

    controller.observe(0.0, 2.0)
    assert _call(check, b"request")[0] == b"answer"
    assert _call(stream, iter(()))[0] == b"streamed"


def test_a_probe_is_answered_even_while_shedding_and_never_reaches_the_handler() -> None:
    admission = Admission(LIMIT)
    check, _, seen = _wrapped(admission)
    for api in admission.apis():
        api.controller.observe(1.0, 0.0)
        api.controller.observe(1.0, 1.0)
    assert _call(check, admission.probe_body) == (b"", None)
    assert seen == []
    assert _counts(admission)["test.Service/Check"] == (0, True)


def test_other_handlers_are_left_alone_and_the_tick_follows_the_limit() -> None:
    admission = Admission(LIMIT)

    async def stream_out(request: Any, context: Any) -> Any:
        yield b""

    handler = grpc.unary_stream_rpc_method_handler(stream_out)
    assert admission.wrap("test.Service", {"Watch": handler}) == {"Watch": handler}
    assert [api.name for api in admission.apis()] == []
    assert Admission(0.05).tick == pytest.approx(0.02)
    assert (Admission(0.001).tick, Admission(10).tick) == (0.01, 0.1)


# (calls since the last probe, seconds since it, tick number, last delay in ms, shedding) -> probe now?
PROBING: dict[str, tuple[tuple[int, float, int, float, bool], bool]] = {
    "calm: on every fifth tick once 8 calls came": ((8, 0.1, 5, 0, False), True),
    "calm: not between those ticks": ((8, 0.1, 6, 0, False), False),
    "calm: fewer calls wait for a second": ((3, 0.1, 5, 0, False), False),
    "calm: any call after a second": ((1, 1.0, 10, 0, False), True),
    "a queue is seen: on every tick": ((1, 0.02, 7, 3, False), True),
    "shedding: on every tick": ((1, 0.02, 7, 0, True), True),
}


@pytest.mark.parametrize("case", PROBING, ids=list(PROBING))
def test_when_probes_go(case: str) -> None:
    (calls, since, tick, delay_ms, shedding), expected = PROBING[case]
    api = _Api("test.Service/Check", LIMIT, probed=True)  # target 10 ms: a queue is seen past 2.5 ms
    api.calls, api.probed_at, now = calls, 100.0 - since, 100.0
    api.estimate.answered(api.estimate.sent(now - delay_ms / 1e3), now)
    api.controller.shedding = shedding
    assert _due(api, now, tick) is expected
