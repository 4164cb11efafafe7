"""mixerd.params: YAML params read strictly into dataclasses, every problem reported with its path."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import pytest

from mixerd.attribute.values import Duration
from mixerd.params import ParamsError, Problem, camel, field_names, params_to_dict, read_params

SECOND = 1_000_000_000
_ZERO = Duration(0)
_ONE_SECOND = Duration(SECOND)


class Color(IntEnum):
    RED = 0
    GREEN = 1
    BLUE = 7


@dataclass
class Limit:
    name: str = ""
    max_amount: int = 0
    valid_duration: Duration = _ZERO

    def check(self) -> Iterator[Problem]:
        if self.max_amount < 0:
            yield ".maxAmount", f"must not be negative, got {self.max_amount}"


@dataclass
class Everything:
    text: str = "default"
    count: int = 3
    ratio: float = 0.5
    enabled: bool = False
    timeout: Duration = _ONE_SECOND
    color: Color = Color.RED
    limit: Limit = field(default_factory=Limit)
    limits: list[Limit] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    pair: tuple[int, ...] = ()
    labels: dict[str, int] = field(default_factory=dict)
    by_name: dict[str, Limit] = field(default_factory=dict)
    maybe: int | None = None
    anything: Any = None


def problems(model: type, data: Any) -> list[Problem]:
    with pytest.raises(ParamsError) as e:
        read_params(model, data)
    return e.value.problems


# -- defaults and names ----------------------------------------------------------------------------


def test_none_and_empty_mapping_give_the_defaults() -> None:
    assert read_params(Everything, None) == Everything()
    assert read_params(Everything, {}) == Everything()


def test_both_spellings_are_accepted() -> None:
    camel_case = read_params(Everything, {"byName": {"a": {"maxAmount": 2}}})
    snake_case = read_params(Everything, {"by_name": {"a": {"max_amount": 2}}})
    assert camel_case == snake_case == Everything(by_name={"a": Limit(max_amount=2)})


def test_camel_and_field_names() -> None:
    assert camel("valid_duration") == "validDuration"
    assert camel("text") == "text"
    assert camel("a_b_c") == "aBC"
    assert field_names(Limit) == {
        "name": "name",
        "max_amount": "max_amount",
        "maxAmount": "max_amount",
        "valid_duration": "valid_duration",
        "validDuration": "valid_duration",
    }


def test_a_field_given_twice_is_an_error() -> None:
    assert problems(Limit, {"maxAmount": 1, "max_amount": 2}) == [
        (".max_amount", "field given twice (as maxAmount and max_amount)")
    ]
    assert problems(Limit, {"max_amount": 1, "maxAmount": 2}) == [
        (".maxAmount", "field given twice (as maxAmount and max_amount)")
    ]


def test_an_unknown_field_names_the_known_ones() -> None:
    assert problems(Limit, {"maxAmont": 1}) == [
        (".maxAmont", "unknown field (known: name, maxAmount, validDuration)")
    ]


def test_params_that_are_not_a_mapping() -> None:
    assert problems(Limit, ["name"]) == [("", "expected a mapping, got ['name']")]
    assert str(ParamsError([("", "expected a mapping, got 3")])) == ".: expected a mapping, got 3"


def test_every_problem_is_reported_not_only_the_first() -> None:
    data = {"count": "ten", "ratio": "half", "enabled": "yes", "colour": "RED", "limit": {"name": 1.5}}
    assert problems(Everything, data) == [
        (".count", "expected an integer, got 'ten'"),
        (".ratio", "expected a number, got 'half'"),
        (".enabled", "expected true or false, got 'yes'"),
        (
            ".colour",
            "unknown field (known: text, count, ratio, enabled, timeout, color, limit, limits, names, pair, "
            "labels, byName, maybe, anything)",
        ),
    ]  # 1.5 is a fine string: YAML reads `name: 1.5` as a number


def test_params_error_joins_the_problems() -> None:
    with pytest.raises(ParamsError) as e:
        read_params(Everything, {"count": "x", "limit": {"maxAmount": True}})
    assert str(e.value) == (
        ".count: expected an integer, got 'x'; .limit.maxAmount: expected an integer, got True"
    )


# -- scalars ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("abc", "abc"), ("", ""), (200, "200"), (1.5, "1.5")],
)
def test_strings(raw: Any, expected: str) -> None:
    assert read_params(Everything, {"text": raw}).text == expected


@pytest.mark.parametrize("raw", [True, None, ["a"], {"a": 1}])
def test_not_strings(raw: Any) -> None:
    assert problems(Everything, {"text": raw}) == [(".text", f"expected a string, got {raw!r}")]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(5, 5), (-5, -5), (5.0, 5), ("12", 12), (" -3 ", -3), (2**62, 2**62)],
)
def test_integers(raw: Any, expected: int) -> None:
    value = read_params(Everything, {"count": raw}).count
    assert value == expected and type(value) is int


@pytest.mark.parametrize("raw", [True, False, 5.5, "5.5", "five", None, [1]])
def test_not_integers(raw: Any) -> None:
    assert problems(Everything, {"count": raw}) == [(".count", f"expected an integer, got {raw!r}")]


@pytest.mark.parametrize(("raw", "expected"), [(1, 1.0), (0.25, 0.25), ("2.5", 2.5), ("1e3", 1000.0)])
def test_floats(raw: Any, expected: float) -> None:
    value = read_params(Everything, {"ratio": raw}).ratio
    assert value == expected and type(value) is float


@pytest.mark.parametrize("raw", [True, "half", None])
def test_not_floats(raw: Any) -> None:
    assert problems(Everything, {"ratio": raw}) == [(".ratio", f"expected a number, got {raw!r}")]


@pytest.mark.parametrize(
    ("raw", "expected"), [(True, True), (False, False), ("true", True), ("FALSE", False)]
)
def test_booleans(raw: Any, expected: bool) -> None:
    assert read_params(Everything, {"enabled": raw}).enabled is expected


@pytest.mark.parametrize("raw", [1, 0, "yes", None])
def test_not_booleans(raw: Any) -> None:
    assert problems(Everything, {"enabled": raw}) == [(".enabled", f"expected true or false, got {raw!r}")]


# -- durations -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "nanos"),
    [
        ("1s", SECOND),
        ("500ms", SECOND // 2),
        ("1h5m", 3900 * SECOND),
        ("1.5s", 3 * SECOND // 2),
        (" 2m ", 120 * SECOND),
        ("0", 0),
        ("-1s", -SECOND),
        (3, 3 * SECOND),
        (0.25, SECOND // 4),
        (0, 0),
    ],
)
def test_durations_as_text_or_seconds(raw: Any, nanos: int) -> None:
    value = read_params(Everything, {"timeout": raw}).timeout
    assert value == nanos and isinstance(value, Duration)


@pytest.mark.parametrize("raw", ["1", "soon", "1d", "", True, None, [1], float("inf"), float("nan")])
def test_not_durations(raw: Any) -> None:
    assert problems(Everything, {"timeout": raw}) == [
        (".timeout", f"expected a duration such as '1s' or '500ms', got {raw!r}")
    ]


def test_durations_beyond_go_range_are_errors() -> None:
    assert problems(Everything, {"timeout": 10**10}) == [
        (".timeout", "10000000000 seconds is out of range (at most 2562047h47m16.854775807s)")
    ]
    assert problems(Everything, {"timeout": "3000000h"}) == [
        (".timeout", "expected a duration such as '1s' or '500ms', got '3000000h'")
    ]
    assert read_params(Everything, {"timeout": "2562047h47m16.854775807s"}).timeout == 2**63 - 1


# -- enums -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [("BLUE", Color.BLUE), (7, Color.BLUE), (0, Color.RED)])
def test_enums_by_name_or_number(raw: Any, expected: Color) -> None:
    assert read_params(Everything, {"color": raw}).color is expected


@pytest.mark.parametrize("raw", ["blue", "Blue", 3, "7", True, None, 1.0])
def test_not_enum_members(raw: Any) -> None:
    assert problems(Everything, {"color": raw}) == [
        (".color", f"expected one of RED, GREEN, BLUE, got {raw!r}")
    ]


# -- containers and nesting ------------------------------------------------------------------------


def test_nested_dataclasses_lists_and_maps() -> None:
    value = read_params(
        Everything,
        {
            "limit": {"name": "a", "validDuration": "1m"},
            "limits": [{"name": "b"}, {"max_amount": 4}],
            "names": ["x", 5],
            "pair": [1, "2"],
            "labels": {"a": 1, 2: "3"},
            "maybe": 4,
            "anything": {"kept": ["as", "read"]},
        },
    )
    assert value == Everything(
        limit=Limit(name="a", valid_duration=Duration(60 * SECOND)),
        limits=[Limit(name="b"), Limit(max_amount=4)],
        names=["x", "5"],
        pair=(1, 2),
        labels={"a": 1, "2": 3},
        maybe=4,
        anything={"kept": ["as", "read"]},
    )


def test_null_containers_are_empty_and_null_optionals_none() -> None:
    value = read_params(
        Everything, {"limit": None, "limits": None, "pair": None, "labels": None, "maybe": None}
    )
    assert value == Everything()
    assert value.pair == () and value.limits == [] and value.maybe is None


def test_paths_inside_containers() -> None:
    data = {
        "limits": [{"name": "ok"}, {"maxAmount": "many"}, "oops"],
        "labels": {"good": 1, "bad": "x"},
        "by_name": {"q": {"validDuration": "forever", "extra": 1}},
        "names": "not a list",
        "pair": [1, "two"],
        "maybe": "x",
    }
    assert problems(Everything, data) == [  # in the order of the data
        (".limits[1].maxAmount", "expected an integer, got 'many'"),
        (".limits[2]", "expected a mapping, got 'oops'"),
        (".labels['bad']", "expected an integer, got 'x'"),
        (".byName['q'].validDuration", "expected a duration such as '1s' or '500ms', got 'forever'"),
        (".byName['q'].extra", "unknown field (known: name, maxAmount, validDuration)"),
        (".names", "expected a list, got 'not a list'"),
        (".pair[1]", "expected an integer, got 'two'"),
        (".maybe", "expected an integer, got 'x'"),
    ]


def test_a_map_that_is_not_a_mapping() -> None:
    assert problems(Everything, {"labels": ["a"]}) == [(".labels", "expected a mapping, got ['a']")]


def test_long_values_are_shortened_in_messages() -> None:
    ((path, reason),) = problems(Everything, {"count": "x" * 100})
    assert path == ".count"
    assert reason == "expected an integer, got '" + "x" * 56 + "..."


# -- check() ---------------------------------------------------------------------------------------


@dataclass
class Window:
    low: int = 0
    high: int = 10
    limits: list[Limit] = field(default_factory=list)
    by_name: dict[str, Limit] = field(default_factory=dict)

    def check(self) -> Iterator[Problem]:
        if self.low > self.high:
            yield ".low", f"must not exceed high ({self.high}), got {self.low}"


def test_check_problems_get_absolute_paths_depth_first() -> None:
    data = {"low": 11, "limits": [{}, {"maxAmount": -1}], "by_name": {"x": {"max_amount": -2}}}
    assert problems(Window, data) == [
        (".limits[1].maxAmount", "must not be negative, got -1"),
        (".byName['x'].maxAmount", "must not be negative, got -2"),
        (".low", "must not exceed high (10), got 11"),
    ]


def test_check_runs_only_after_a_clean_read() -> None:
    assert problems(Window, {"low": 11, "high": "x"}) == [(".high", "expected an integer, got 'x'")]


def test_check_runs_on_defaults_too() -> None:
    @dataclass
    class AlwaysBad:
        def check(self) -> Iterator[Problem]:
            yield "", "never valid"

    assert problems(AlwaysBad, None) == [("", "never valid")]


def test_a_check_that_returns_none_means_no_problems() -> None:
    @dataclass
    class Quiet:
        a: int = 0

        def check(self) -> None:
            return None

    assert read_params(Quiet, {"a": 1}) == Quiet(1)


def test_a_check_that_yields_no_pairs_is_a_model_bug() -> None:
    @dataclass
    class Sloppy:
        def check(self) -> Iterator[str]:
            yield "just a reason"

    with pytest.raises(TypeError, match=r"Sloppy\.check\(\) must yield \(path, reason\) string pairs, got"):
        read_params(Sloppy, None)


# -- required, derived and unsupported fields ------------------------------------------------------


@dataclass
class Required:
    url: str
    retries: int = 1
    derived: str = field(init=False, default="")

    def __post_init__(self) -> None:
        if self.retries > 5:
            raise ValueError("retries: at most 5")
        self.derived = self.url.upper()


def test_a_field_without_default_is_required() -> None:
    assert problems(Required, {"retries": 2}) == [(".url", "missing: this field has no default")]
    assert problems(Required, None) == [(".url", "missing: this field has no default")]
    assert read_params(Required, {"url": "x"}).derived == "X"


def test_a_field_without_init_is_not_read() -> None:
    assert problems(Required, {"url": "x", "derived": "y"}) == [
        (".derived", "unknown field (known: url, retries)")
    ]


def test_post_init_errors_are_reported_at_the_dataclass_path() -> None:
    @dataclass
    class Outer:
        inner: Required = field(default_factory=lambda: Required("x"))

    assert problems(Outer, {"inner": {"url": "a", "retries": 9}}) == [(".inner", "retries: at most 5")]


def test_unsupported_field_types_are_model_bugs() -> None:
    @dataclass
    class Odd:
        either: int | str = 0
        when: complex = 0j

    with pytest.raises(TypeError, match=r"is not supported \(at \.either\): use T \| None"):
        read_params(Odd, {"either": 1})
    with pytest.raises(TypeError, match=r"params model field type <class 'complex'> is not supported"):
        read_params(Odd, {"when": 1})


def test_path_prefix() -> None:
    with pytest.raises(ParamsError) as e:
        read_params(Limit, {"maxAmount": -1}, path=".spec.params")
    assert e.value.problems == [(".spec.params.maxAmount", "must not be negative, got -1")]


# -- params_to_dict --------------------------------------------------------------------------------


def test_params_to_dict_writes_lower_camel_plain_data() -> None:
    value = Everything(
        timeout=Duration(90 * SECOND),
        color=Color.BLUE,
        limits=[Limit(name="a", valid_duration=Duration(SECOND // 2))],
        pair=(1, 2),
        by_name={"q": Limit(max_amount=3)},
    )
    assert params_to_dict(value) == {
        "text": "default",
        "count": 3,
        "ratio": 0.5,
        "enabled": False,
        "timeout": "1m30s",
        "color": "BLUE",
        "limit": {"name": "", "maxAmount": 0, "validDuration": "0s"},
        "limits": [{"name": "a", "maxAmount": 0, "validDuration": "500ms"}],
        "names": [],
        "pair": [1, 2],
        "labels": {},
        "byName": {"q": {"name": "", "maxAmount": 3, "validDuration": "0s"}},
        "maybe": None,
        "anything": None,
    }


def test_params_to_dict_leaves_out_derived_fields() -> None:
    assert params_to_dict(Required("x")) == {"url": "x", "retries": 1}


def test_params_to_dict_round_trips() -> None:
    value = read_params(
        Everything,
        {
            "timeout": "1h0m0.000000001s",
            "color": "GREEN",
            "limits": [{"name": "a", "maxAmount": 2}],
            "pair": [3],
            "labels": {"x": 1},
            "byName": {"b": {"validDuration": "2s"}},
            "maybe": 0,
            "ratio": 0.1,
        },
    )
    assert read_params(Everything, params_to_dict(value)) == value
    assert read_params(Required, params_to_dict(Required("x", 2))) == Required("x", 2)
