"""memquota: exact grant sequences on an injected clock, overrides, allocation, dedup, validation."""

from __future__ import annotations

import pytest

from mixerd.adapter import AdapterInfo, Duration, Env, InstanceInfo, QuotaArgs, QuotaResult, dimension_text
from mixerd.attribute.values import Timestamp
from mixerd.params import ParamsError, read_params
from mixerd.templates import QuotaInstance
from mixerd_adapters import memquota
from mixerd_adapters.memquota import Params, UnknownQuota, validate

MS = 1_000_000
S = 1_000_000_000
T0 = 1_700_000_000 * S  # a whole tick, so tick edges fall on whole 100 ms
RPS = "requestcount.instance.istio-system"
SEC1 = Duration(S)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now

    def at(self, ms: int) -> None:
        self.now = T0 + ms * MS


def make(params: dict, clock: Clock) -> memquota.MemQuota:
    env = Env(
        handler="h.handler.istio-system",
        adapter="memquota",
        params=read_params(Params, params),
        instances={},
        clock=clock,
    )
    return memquota.build(env)


def ask(
    handler, amount: int, *, best_effort: bool = False, dedup: str = "", name: str = RPS, **dims
) -> QuotaResult:
    return handler.handle_quota(
        QuotaInstance(name=name, dimensions=dims), QuotaArgs(amount, best_effort, dedup)
    )


def grants(handler, clock: Clock, steps: list[tuple[int, int, bool]]) -> list[int]:
    """(ms, amount, best_effort) -> the granted amounts."""
    out = []
    for ms, amount, best_effort in steps:
        clock.at(ms)
        out.append(ask(handler, amount, best_effort=best_effort).granted_amount)
    return out


def test_rolling_window_frees_each_tick_a_window_after_it() -> None:
    clock = Clock()
    h = make({"quotas": [{"name": RPS, "maxAmount": 10, "validDuration": "1s"}]}, clock)
    steps = [
        (0, 4, False),  # tick 0: 4
        (550, 4, False),  # tick 5: 8 used
        (900, 4, False),  # 2 left: all or nothing -> 0
        (950, 4, True),  # best effort takes the 2 left, tick 9
        (999, 1, True),  # full: best effort gets 0
        (1000, 5, False),  # tick 10: tick 0's 4 left the window, 4 free -> 0
        (1000, 4, False),  # exactly what is free
        (1499, 1, False),  # tick 14: still full
        (1500, 4, False),  # tick 15: tick 5's 4 freed
        (1950, 3, True),  # tick 19: tick 9's 2 freed -> 2
        (5000, 10, False),  # long after: the whole window is empty again
        (5000, 1, True),
    ]
    assert grants(h, clock, steps) == [4, 4, 0, 2, 0, 0, 4, 0, 4, 2, 10, 0]
    assert ask(h, 0).valid_duration == SEC1


def test_window_is_ceil_of_valid_duration_in_seconds() -> None:
    clock = Clock()
    h = make({"quotas": [{"name": RPS, "maxAmount": 3, "validDuration": "1500ms"}]}, clock)
    # 1.5s counts over 2s = 20 ticks; the result still says 1.5s.
    assert grants(h, clock, [(0, 3, False), (1900, 1, False), (1999, 1, False), (2000, 3, False)]) == [
        3,
        0,
        0,
        3,
    ]
    clock.at(2000)
    assert ask(h, 0) == QuotaResult(granted_amount=0, valid_duration=Duration(1500 * MS))


def test_negative_amount_on_a_rate_limit_grants_nothing_and_frees_nothing() -> None:
    clock = Clock()
    h = make({"quotas": [{"name": RPS, "maxAmount": 2, "validDuration": "1s"}]}, clock)
    assert grants(h, clock, [(0, 2, False), (10, -2, False), (20, 1, True)]) == [2, 0, 0]


def test_buckets_are_per_dimensions_and_overrides_pick_the_limit() -> None:
    clock = Clock()
    params = {
        "quotas": [
            {
                "name": RPS,
                "maxAmount": 5,
                "validDuration": "1s",
                "overrides": [
                    {"dimensions": {"source": "a", "code": "200"}, "maxAmount": 1, "validDuration": "2s"},
                    {"dimensions": {"source": "a"}, "maxAmount": 2, "validDuration": "1s"},
                    {
                        "dimensions": {"ip": "10.0.0.1"},
                        "maxAmount": 3,
                    },  # validDuration 0: an allocation quota
                ],
            }
        ]
    }
    h = make(params, clock)
    # The first override whose dimensions all match, compared as text (an int 200 is "200").
    assert ask(h, 9, best_effort=True, source="a", code=200) == QuotaResult(1, Duration(2 * S))
    assert ask(h, 9, best_effort=True, source="a", code=404) == QuotaResult(2, SEC1)
    # Other dimensions, another bucket, even under the same override.
    assert ask(h, 9, best_effort=True, source="a") == QuotaResult(2, SEC1)
    assert ask(h, 1, source="a", code=404) == QuotaResult(0, SEC1)
    assert ask(h, 9, best_effort=True, source="b") == QuotaResult(5, SEC1)
    ip = bytes([10, 0, 0, 1])
    assert ask(h, 2, ip=ip) == QuotaResult(2, Duration(0))
    clock.at(60_000)  # an allocation never expires
    assert ask(h, 2, best_effort=True, ip=ip) == QuotaResult(1, Duration(0))
    assert ask(h, 1, ip="10.0.0.1") == QuotaResult(0, Duration(0))  # the same text, the same bucket


def test_allocation_quota_counts_until_released() -> None:
    clock = Clock()
    h = make({"quotas": [{"name": RPS, "maxAmount": 5}]}, clock)
    steps = [
        (0, 3, False),
        (0, 3, False),  # 2 left: 0
        (0, 3, True),  # best effort: the 2
        (100_000, 1, True),  # no expiry
        (100_000, -4, False),  # give back 4: granted -4
        (100_000, 4, False),
        (100_000, -10, False),  # only the 5 in use can be given back
        (100_000, 5, False),
    ]
    assert grants(h, clock, steps) == [3, 0, 2, 0, -4, 4, -5, 5]
    assert ask(h, 0).valid_duration == Duration(0)


def test_max_amount_zero_denies_with_grant_zero() -> None:
    clock = Clock()
    h = make({"quotas": [{"name": RPS, "maxAmount": 0, "validDuration": "1s"}]}, clock)
    assert ask(h, 1) == QuotaResult(0, SEC1)
    assert ask(h, 1, best_effort=True) == QuotaResult(0, SEC1)


def test_dedup_repeats_the_answer_without_charging_again() -> None:
    clock = Clock()
    h = make(
        {"quotas": [{"name": RPS, "maxAmount": 3, "validDuration": "1s"}], "minDeduplicationDuration": "1s"},
        clock,
    )
    clock.at(900)
    assert ask(h, 2, dedup="r1") == QuotaResult(2, SEC1)
    clock.at(1200)  # one swap: r1 is in the old generation; 700 ms of its 1s are left
    assert ask(h, 2, dedup="r1") == QuotaResult(2, Duration(700 * MS))
    assert ask(h, 2, dedup="r2") == QuotaResult(0, SEC1)  # only r1's 2 were charged: 1 left
    clock.at(1999)
    assert ask(h, 2, dedup="r1") == QuotaResult(2, Duration(0))  # its valid duration is used up
    assert ask(h, 2, dedup="r2") == QuotaResult(0, Duration(201 * MS))  # a denial is remembered too
    clock.at(2000)  # second swap: r1 forgotten, charged anew (its 2 left the window at 1.9s)
    assert ask(h, 2, dedup="r1") == QuotaResult(2, SEC1)
    assert ask(h, 2, dedup="r3") == QuotaResult(0, SEC1)


def test_dedup_forgets_everything_after_two_idle_periods_and_ignores_empty_ids() -> None:
    clock = Clock()
    h = make({"quotas": [{"name": RPS, "maxAmount": 10}], "minDeduplicationDuration": "500ms"}, clock)
    assert ask(h, 1, dedup="x").granted_amount == 1
    clock.at(999)  # one swap (at 500): still known
    assert ask(h, 1, dedup="x").granted_amount == 1
    clock.at(5000)  # many periods: both generations dropped
    assert ask(h, 1, dedup="x").granted_amount == 1
    assert [ask(h, 1).granted_amount for _ in range(3)] == [1, 1, 1]  # no id: every call charges
    assert grants(h, clock, [(5000, 10, True)]) == [5]  # 1 + 1 + 3 used: x was charged twice


def test_unknown_instance_is_an_error() -> None:
    h = make({"quotas": [{"name": RPS, "maxAmount": 1}]}, Clock())
    with pytest.raises(UnknownQuota, match=r"^no quota is configured for instance 'other.instance.default'$"):
        ask(h, 1, name="other.instance.default")


def test_params_problems_with_paths() -> None:
    data = {
        "minDeduplicationDuration": "0s",
        "quotas": [
            {"name": RPS, "maxAmount": -1, "validDuration": "-1s"},
            {"name": RPS, "maxAmount": 1, "overrides": [{"dimensions": {"a": "b"}, "maxAmount": -2}]},
            {"maxAmount": 1},
        ],
    }
    with pytest.raises(ParamsError) as e:
        read_params(Params, data)
    assert e.value.problems == [
        (".minDeduplicationDuration", "must be greater than 0, got 0s"),
        (".quotas[0].maxAmount", "must not be negative, got -1"),
        (".quotas[0].validDuration", "must not be negative, got -1s"),
        (".quotas[1].name", f"duplicate quota '{RPS}' (also at .quotas[0])"),
        (".quotas[1].overrides[0].maxAmount", "must not be negative, got -2"),
        (".quotas[2].name", "must name a quota instance by its FQN (e.g. requestcount.instance.default)"),
    ]


def test_validate_wants_a_quota_for_every_routed_instance() -> None:
    params = read_params(Params, {"quotas": [{"name": RPS, "maxAmount": 1}]})
    instances = {
        RPS: InstanceInfo(RPS, "quota"),
        "b.instance.ns": InstanceInfo("b.instance.ns", "quota"),
        "a.instance.ns": InstanceInfo("a.instance.ns", "quota"),
    }
    assert validate(params, instances) == [
        (".quotas", "no quota is configured for instance 'a.instance.ns'"),
        (".quotas", "no quota is configured for instance 'b.instance.ns'"),
    ]
    assert validate(params, {RPS: instances[RPS]}) == []
    # validate also reports the params rules, for params made without read_params
    assert validate(Params(min_deduplication_duration=Duration(0)), {}) == [
        (".minDeduplicationDuration", "must be greater than 0, got 0s")
    ]


def test_defaults_and_hook() -> None:
    assert read_params(Params, None) == Params(quotas=[], min_deduplication_duration=SEC1)
    info = memquota.mixerd_adapter_info()
    assert isinstance(info, AdapterInfo)
    assert (info.name, info.templates, info.params, info.validate) == (
        "memquota",
        ("quota",),
        Params,
        validate,
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("x", "x"),
        (200, "200"),
        (True, "true"),
        (1.5, "1.5"),
        (bytes([10, 0, 0, 1]), "10.0.0.1"),
        (bytes(15) + b"\x01", "::1"),
        (bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 1]), "10.0.0.1"),
        (b"\x01\x02", "0102"),
        (Duration(90 * S), "1m30s"),
        (Timestamp(T0), "2023-11-14T22:13:20Z"),
        ({"b": "2", "a": "1"}, "map[a:1 b:2]"),
        (None, ""),
    ],
)
def test_dimension_text(value: object, text: str) -> None:
    assert dimension_text(value) == text


# -- memory that callers choose -------------------------------------------------------------------------


def test_idle_buckets_are_dropped_so_memory_follows_the_live_ones() -> None:
    """Each distinct dimension value (a caller's IP, a header) makes a bucket; one whose window is empty
    again, or an allocation bucket holding nothing, goes at the next sweep."""
    clock = Clock()
    h = make(
        {
            "quotas": [
                {"name": RPS, "maxAmount": 5, "validDuration": "1h"},
                {"name": "alloc.instance.istio-system", "maxAmount": 5},
            ]
        },
        clock,
    )
    for i in range(3000):  # 3000 callers within the hour
        assert ask(h, 1, ip=f"10.0.{i // 256}.{i % 256}").granted_amount == 1
    assert 1024 <= len(h._buckets) <= 3000  # live: all are within their hour
    assert ask(h, 1, name="alloc.instance.istio-system", user="held").granted_amount == 1
    assert ask(h, 1, name="alloc.instance.istio-system", user="given-back").granted_amount == 1
    assert ask(h, -1, name="alloc.instance.istio-system", user="given-back").granted_amount == -1
    clock.at(3_600_000)  # an hour later every rate-limit window is empty again
    for i in range(2048):
        ask(h, 1, ip=f"10.9.{i // 256}.{i % 256}")
    keys = set(h._buckets)
    assert ("alloc.instance.istio-system", (("user", "held"),)) in keys  # holds a unit: kept
    assert ("alloc.instance.istio-system", (("user", "given-back"),)) not in keys
    assert not any(dims == (("ip", "10.0.0.1"),) for _, dims in keys)
    assert len(h._buckets) <= 2048 + 1
    assert ask(h, 5, ip="10.0.0.1").granted_amount == 5  # a dropped bucket starts afresh, as it would have


def test_a_long_window_takes_memory_for_its_grants_not_its_length() -> None:
    clock = Clock()
    h = make({"quotas": [{"name": RPS, "maxAmount": 100, "validDuration": "24h"}]}, clock)
    ask(h, 1, ip="10.0.0.1")
    [bucket] = h._buckets.values()
    assert len(bucket.window._pairs) == 1  # a ring would hold 864,000 ticks


def test_top_counters_are_the_most_used_now_and_reading_them_changes_nothing() -> None:
    clock = Clock()
    params = {
        "quotas": [{"name": RPS, "maxAmount": 10, "validDuration": "1s"}, {"name": "alloc", "maxAmount": 3}]
    }
    handler = make(params, clock)
    for user, amount in (("a", 2), ("b", 7), ("c", 1)):
        ask(handler, amount, user=user)
    ask(handler, 2, name="alloc", pool="x")
    clock.at(600)
    ask(handler, 1, user="a")
    top = handler.top_counters(3)
    assert (top["quota_counters"], top["rate_limit_counters"], top["rate_limit"]) == (4, 0, [])
    assert [(q["instance"], q["dimensions"], q["used"], q["valid_duration"]) for q in top["quota"]] == [
        (RPS, {"user": "b"}, 7, "1s"),
        (RPS, {"user": "a"}, 3, "1s"),
        ("alloc", {"pool": "x"}, 2, ""),  # an allocation quota has no window
    ]
    clock.at(1050)  # the grants at 0 ms left the window; a's at 600 ms is still in it
    assert [(q["dimensions"], q["used"]) for q in handler.top_counters()["quota"]] == [
        ({"pool": "x"}, 2),
        ({"user": "a"}, 1),
    ]
    clock.at(0)  # reading did not move any window: a request at the old time sees what it saw
    assert ask(handler, 10, best_effort=True, user="b").granted_amount == 3
