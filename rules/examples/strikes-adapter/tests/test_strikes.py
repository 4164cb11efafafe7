"""The strikes adapter, tested the way an adapter author tests: params, validate, and a handler built
with an Env of our own (our clock, our loop), called directly."""

from __future__ import annotations

import asyncio

import pytest
from mixerd_example_adapter import Params, build, mixerd_adapter_info, validate

from mixerd.adapter import (
    CheckResult,
    Code,
    Duration,
    Env,
    InstanceInfo,
    ListEntryInstance,
    MetricInstance,
    ParamsError,
    ValueType,
    read_params,
)

SECOND = 1_000_000_000


def test_params_read_both_spellings_durations_and_enums() -> None:
    params = read_params(Params, {"maxStrikes": 3, "window": "30s", "status": "UNAUTHENTICATED"})
    assert params == Params(max_strikes=3, window=Duration(30 * SECOND), status=Code.UNAUTHENTICATED)
    assert read_params(Params, {"max_strikes": 3, "status": 16}) == Params(
        max_strikes=3, status=Code.UNAUTHENTICATED
    )


def test_bad_params_are_reported_with_their_paths() -> None:
    with pytest.raises(ParamsError) as e:
        read_params(Params, {"maxStrikes": 0, "window": "10ms", "status": "OK", "exempt": ["bob", ""]})
    assert e.value.problems == [
        (".maxStrikes", "must be at least 1, got 0"),
        (".window", "must be at least 1s, got 10ms"),
        (".status", "must be an error code: OK would box nobody"),
        (".exempt[1]", "must not be empty"),
    ]


def test_validate_needs_string_offenders() -> None:
    who = InstanceInfo("who.instance.default", "listentry", {"value": ValueType.IP_ADDRESS})
    hits = InstanceInfo("hits.instance.default", "metric", {"value": ValueType.INT64, "dimensions": {}})
    instances = {who.name: who, hits.name: hits}
    assert validate(Params(), instances) == [
        (".dimension", "instance 'hits.instance.default' needs a STRING dimension 'offender', got nothing"),
        ("", "instance 'who.instance.default': the listentry value must be a STRING, got IP_ADDRESS"),
    ]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000 * SECOND

    def __call__(self) -> int:
        return self.now


def strike(offender: str) -> MetricInstance:
    return MetricInstance(name="strike.instance.default", value=1, dimensions={"offender": offender})


def check(offender: str) -> ListEntryInstance:
    return ListEntryInstance(name="offender.instance.default", value=offender)


def test_strikes_box_an_offender_until_they_leave_the_window() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        params = Params(max_strikes=2, window=Duration(60 * SECOND), exempt=["alice"])
        env = Env(
            handler="strikes.handler.default", adapter="strikes", params=params, instances={}, clock=clock
        )
        handler = build(env)
        try:
            allow = CheckResult(valid_duration=Duration(SECOND))
            handler.handle_metric([strike("bob"), strike("alice")])
            assert handler.handle_listentry(check("bob")) == allow
            clock.now += 10 * SECOND
            handler.handle_metric([strike("bob"), strike("alice"), strike("alice")])
            assert handler.handle_listentry(check("bob")) == CheckResult(
                status=Code.PERMISSION_DENIED,
                message="bob has 2 strikes in the last 1m0s",
                valid_duration=Duration(50 * SECOND),  # the first strike leaves the window in 50s
            )
            assert handler.handle_listentry(check("alice")) == allow  # exempt
            clock.now += 50 * SECOND
            assert handler.strikes("bob") == 1
            assert handler.handle_listentry(check("bob")) == allow
        finally:
            handler.close()
            handler.close()  # idempotent
            await env.cancel_background()  # what mixerd does when it closes the handler

    asyncio.run(scenario())


def test_the_adapter_info() -> None:
    info = mixerd_adapter_info()
    assert (info.name, info.templates, info.params) == ("strikes", ("listentry", "metric"), Params)
