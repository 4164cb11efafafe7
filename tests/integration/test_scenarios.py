"""Every scenario in tests/data/scenarios against a real mixerd over gRPC, and the harness itself.

A scenario is config + calls + expected answers (format: the mixerd.testing_scenarios docstring).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mixerd.attribute import BUILTIN_MANIFEST, Duration, Timestamp
from mixerd.testing_scenarios import (
    ScenarioError,
    ScenarioFailed,
    check_scenario,
    load_scenario,
    parse_scenario,
    typed_bag,
)
from mixerd.testing_scenarios.runner import project

SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "data" / "scenarios").glob("*.yaml"))
pytestmark = pytest.mark.integration

_DENY_BOB = """
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: deny, namespace: istio-system}
spec:
  compiledAdapter: denier
  params: {status: {code: 7, message: nope}}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: nothing, namespace: istio-system}
spec: {compiledTemplate: checknothing}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: deny, namespace: istio-system}
spec:
  match: source.user == "bob"
  actions: [{handler: deny, instances: [nothing]}]
"""


def test_the_scenarios_folder_is_not_empty() -> None:
    assert len(SCENARIOS) >= 10


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(path: Path, tmp_path: Path) -> None:
    check_scenario(path, tmp_path)


def _scenario(calls: list[dict[str, Any]], config: Any = _DENY_BOB) -> Any:
    return parse_scenario({"config": config, "calls": calls}, name="demo")


def test_a_mismatch_shows_a_diff_of_what_was_named_and_the_whole_answer(tmp_path: Path) -> None:
    scenario = _scenario(
        [
            {"check": {"attributes": {"source.user": "alice"}}, "expect": {"code": "OK"}},
            {
                "note": "bob",
                "check": {"attributes": {"source.user": "bob"}},
                "expect": {"code": "OK", "validDuration": "5s", "referenced": ["source.user ABSENCE"]},
            },
        ]
    )
    with pytest.raises(ScenarioFailed) as failed:
        check_scenario(scenario, tmp_path)
    assert str(failed.value) == (
        "scenario demo: 1 call(s) differ\n"
        "\n"
        "demo: call 2 (check: bob) differs:\n"
        "--- expected\n"
        "+++ got\n"
        "@@ -1,4 +1,4 @@\n"
        "-code: OK\n"
        "+code: PERMISSION_DENIED\n"
        " validDuration: 5s\n"
        " referenced:\n"
        "-- source.user ABSENCE\n"
        "+- source.user EXACT\n"
        "  whole answer:\n"
        "    rpcError: null\n"
        "    code: PERMISSION_DENIED\n"
        "    message: deny.handler.istio-system:nope\n"
        "    validDuration: 5s\n"
        "    validUseCount: 1000\n"
        "    referenced:\n"
        "    - source.user EXACT\n"
        "    quotas: {}\n"
        "    requestHeaders: []\n"
        "    responseHeaders: []\n"
        "    directResponse: null"
    )


def test_an_rpc_that_fails_unexpectedly_shows_its_error(tmp_path: Path) -> None:
    scenario = _scenario(
        [{"check": {"attributes": {"source.user": "x"}}, "expect": {"code": "OK"}}],
        config=[
            {
                "apiVersion": "config.istio.io/v1alpha2",
                "kind": "handler",
                "metadata": {"name": "boom"},
                "spec": {"compiledAdapter": "spy", "params": {"fail": "kaput"}},
            },
            {
                "apiVersion": "config.istio.io/v1alpha2",
                "kind": "instance",
                "metadata": {"name": "nothing"},
                "spec": {"compiledTemplate": "checknothing"},
            },
            {
                "apiVersion": "config.istio.io/v1alpha2",
                "kind": "rule",
                "metadata": {"name": "boom"},
                "spec": {"actions": [{"handler": "boom", "instances": ["nothing"]}]},
            },
        ],
    )
    with pytest.raises(ScenarioFailed) as failed:
        check_scenario(scenario, tmp_path)
    diff = str(failed.value).split("  whole answer:")[0]
    assert diff.endswith(
        "-code: OK\n"
        "+code: <missing>\n"
        "+rpcError:\n"
        "+  code: INTERNAL\n"
        "+  message: 'performing check operation failed: boom.handler.istio-system: RuntimeError: kaput'\n"
    )


def test_message_matches_is_a_regular_expression(tmp_path: Path) -> None:
    scenario = _scenario(
        [
            {
                "check": {"attributes": {"source.user": "bob"}},
                "expect": {"code": 7, "messageMatches": r"^deny\.handler\.[a-z-]+:nope$"},
            }
        ]
    )
    check_scenario(scenario, tmp_path)


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ({"config": []}, "demo: a scenario needs config and calls"),
        ({"config": [], "calls": [], "extra": 1}, "demo.extra: unknown key (known: calls, clock, config, "),
        ({"config": [], "calls": [{"expect": {}}]}, "demo.calls[0]: a call is either check or report"),
        (
            {"config": [], "calls": [{"check": {}, "expect": {"referencd": []}}]},
            "demo.calls[0].expect.referencd: unknown key (known: adapterCalls, code, directResponse, ",
        ),
        (
            {"config": [], "calls": [{"report": {"bags": [{}]}, "expect": {"code": "OK"}}]},
            "demo.calls[0].expect.code: unknown key (known: adapterCalls, files, metrics, rpcError)",
        ),
        (
            {"config": [], "calls": [{"check": {}, "expect": {"code": "DENIED"}}]},
            "demo.calls[0].expect.code: 'DENIED' is not a google.rpc code (OK, PERMISSION_DENIED, ...)",
        ),
        (
            {"config": [], "calls": [{"check": {}, "expect": {"referenced": ["source.ip PRESENT"]}}]},
            "demo.calls[0].expect.referenced[0]: 'source.ip PRESENT' is not 'name EXACT|ABSENCE'",
        ),
        (
            {"config": [], "calls": [{"check": {}, "expect": {"requestHeaders": ["SET x: 1"]}}]},
            "demo.calls[0].expect.requestHeaders[0]: 'SET x: 1' is not 'REPLACE|APPEND name: value'",
        ),
        (
            {"config": [], "settings": {"adapterTimeoutt": 1}, "calls": [{"check": {}}]},
            "demo.settings.adapterTimeoutt: unknown setting (known: adapterTimeout, address, ",
        ),
        (
            {"config": [], "settings": {"adapterTimeout": "1s"}, "calls": [{"check": {}}]},
            "demo.settings.adapterTimeout: could not convert string to float: '1s'",
        ),
        (
            {"config": [], "calls": [{"check": {"timeout": "soon"}}]},
            "demo.calls[0].check.timeout: ",
        ),
    ],
)
def test_a_bad_scenario_names_the_place(scenario: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError) as e:
        parse_scenario(scenario, name="demo")
    assert str(e.value).startswith(message)


def test_settings_are_read_as_their_flags_are() -> None:
    settings = {"adapterTimeout": 0.25, "config_default_namespace": "mesh"}
    scenario = parse_scenario({"config": [], "settings": settings, "calls": [{"check": {}}]}, name="demo")
    assert scenario.settings == {"adapter_timeout": 0.25, "config_default_namespace": "mesh"}


def test_a_scenario_file_with_bad_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("config: [\n")
    with pytest.raises(ScenarioError, match=rf"^{path}: while parsing"):
        load_scenario(path)


def test_attributes_are_typed_by_the_manifest() -> None:
    raw = yaml.safe_load(
        """
        source.ip: 10.0.0.1
        destination.ip: "2001:db8::1"
        request.headers: {x-n: 1, x-user: bob}
        request.size: 12
        request.time: 2020-01-01T00:00:01Z
        context.time: "2020-01-01T00:00:02.5Z"
        response.duration: 10ms
        connection.mtls: true
        request.path: 404
        custom.number: 1.5
        custom.map: {a: b}
        """
    )
    assert typed_bag(raw, BUILTIN_MANIFEST, "bag") == {
        "source.ip": bytes([10, 0, 0, 1]),
        "destination.ip": bytes.fromhex("20010db8000000000000000000000001"),
        "request.headers": {"x-n": "1", "x-user": "bob"},
        "request.size": 12,
        "request.time": Timestamp.parse("2020-01-01T00:00:01Z"),
        "context.time": Timestamp.parse("2020-01-01T00:00:02.5Z"),
        "response.duration": Duration(10_000_000),
        "connection.mtls": True,
        "request.path": "404",
        "custom.number": 1.5,
        "custom.map": {"a": "b"},
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"source.ip": "nowhere"},
            "bag.source.ip (declared IP_ADDRESS): expected an IPv4 or IPv6 address, got a string 'nowhere'",
        ),
        (
            {"request.size": "big"},
            "bag.request.size (declared INT64): expected an integer, got a string 'big'",
        ),
        ({"response.duration": 5}, "bag.response.duration (declared DURATION): expected a duration"),
        (
            {"request.headers": ["a"]},
            "bag.request.headers (declared STRING_MAP): expected an object of strings, got an array",
        ),
        ({"request.path": True}, "bag.request.path (declared STRING): expected a string, got a boolean true"),
        ({"custom.list": [1]}, "bag.custom.list: cannot send [1] as an attribute value"),
    ],
)
def test_a_value_of_the_wrong_type_names_the_attribute(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError) as e:
        typed_bag(raw, BUILTIN_MANIFEST, "bag")
    assert str(e.value).startswith(message)


@pytest.mark.parametrize(
    ("expected", "got", "seen"),
    [
        ({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 1}}),  # only what is named
        ({"a": {}}, {"a": {"b": 1}}, {"a": {"b": 1}}),  # an empty mapping means empty
        ({"a": [{"b": 1}]}, {"a": [{"b": 1, "c": 2}, {"b": 3}]}, {"a": [{"b": 1}, {"b": 3}]}),  # lengths
        ({"a": 1}, {}, {"a": "<missing>"}),
        ({"messageMatches": "^x"}, {"message": "xyz"}, {"messageMatches": "^x"}),
        ({"messageMatches": "^y"}, {"message": "xyz"}, {"messageMatches": "xyz"}),
    ],
)
def test_what_is_compared(expected: dict[str, Any], got: dict[str, Any], seen: dict[str, Any]) -> None:
    assert project(expected, got) == seen
