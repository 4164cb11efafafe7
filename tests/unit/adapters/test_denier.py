"""denier: params validation with exact paths, and the handler's fixed verdicts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mixerd.adapter import CheckResult, Code, DirectResponse, Duration, Env, QuotaArgs, QuotaResult
from mixerd.params import ParamsError, params_to_dict, read_params
from mixerd.plugins import collect_adapters, make_plugin_manager
from mixerd.templates import TEMPLATES, CheckNothingInstance, ListEntryInstance, QuotaInstance
from mixerd_adapters.denier import Params, build
from mixerd_adapters.denier.params import DIRECT_HTTP_RESPONSE

SECOND = 1_000_000_000
HTTP_CODE = "expected an HTTP status code (a number from 100 to 599, or a name such as Forbidden)"


def handler_for(params: dict | None):
    return build(
        Env(
            handler="h.handler.istio-system",
            adapter="denier",
            params=read_params(Params, params),
            instances={},
        )
    )


def problems(params: dict) -> list[tuple[str, str]]:
    with pytest.raises(ParamsError) as e:
        read_params(Params, params)
    return e.value.problems


def test_defaults_are_mixers():
    assert params_to_dict(read_params(Params, None)) == {
        "status": {"code": 9, "message": "", "details": []},
        "validDuration": "5s",
        "validUseCount": 1000,
    }


def test_default_handler_fails_every_check_with_failed_precondition():
    h = handler_for(None)
    expected = CheckResult(
        status=Code.FAILED_PRECONDITION,
        message="",
        valid_duration=Duration(5 * SECOND),
        valid_use_count=1000,
        direct_response=None,
    )
    assert h.handle_checknothing(CheckNothingInstance(name="deny.instance.istio-system")) == expected
    assert h.handle_listentry(ListEntryInstance(name="list.instance.istio-system", value="x")) == expected


def test_quota_grants_nothing_with_an_ok_status():
    h = handler_for({"status": {"code": 7}})
    for args in (QuotaArgs(amount=1), QuotaArgs(amount=5, best_effort=True, dedup_id="d1")):
        assert h.handle_quota(QuotaInstance(name="q.instance.istio-system"), args) == QuotaResult(
            granted_amount=0, valid_duration=Duration(0), status=Code.OK, message=""
        )


def test_configured_status_cache_values_and_direct_response():
    h = handler_for(
        {
            "status": {
                "code": 7,
                "message": "Not allowed",
                "details": [
                    {
                        "@type": DIRECT_HTTP_RESPONSE,
                        "code": "Forbidden",
                        "body": "go away",
                        "headers": {"Retry-After": 30, "Content-Type": "text/plain"},
                    },
                    {"@type": DIRECT_HTTP_RESPONSE, "code": 302},  # only the first one counts
                ],
            },
            "validDuration": "250ms",
            "valid_use_count": 3,
        }
    )
    assert h.handle_checknothing(CheckNothingInstance(name="a")) == CheckResult(
        status=Code.PERMISSION_DENIED,
        message="Not allowed",
        valid_duration=Duration(250_000_000),
        valid_use_count=3,
        direct_response=DirectResponse(
            code=403, body="go away", headers={"Retry-After": "30", "Content-Type": "text/plain"}
        ),
    )


@pytest.mark.parametrize(
    ("code", "expected"),
    [(302, 302), ("302", 302), ("TooManyRequests", 429), (418, 418), (0, 0), ("Empty", 0), (None, 0)],
)
def test_direct_response_code_by_number_or_enum_name(code, expected):
    detail = {"@type": DIRECT_HTTP_RESPONSE, "headers": {"Location": "https://example.com/login"}}
    if code is not None:
        detail["code"] = code
    result = handler_for({"status": {"code": 16, "details": [detail]}}).handle_checknothing(
        CheckNothingInstance()
    )
    assert result.direct_response == DirectResponse(
        code=expected, body="", headers={"Location": "https://example.com/login"}
    )


def test_status_code_out_of_range():
    assert problems({"status": {"code": 17}}) == [
        (".status.code", "expected a google.rpc.Code from 0 to 16, got 17")
    ]
    assert problems({"status": {"code": -1}}) == [
        (".status.code", "expected a google.rpc.Code from 0 to 16, got -1")
    ]


def test_every_bad_detail_is_reported_with_its_path():
    assert problems(
        {
            "status": {
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"},
                    {"@type": DIRECT_HTTP_RESPONSE, "code": "Teapot"},
                    {"@type": DIRECT_HTTP_RESPONSE, "code": 700, "body": ["x"], "header": {}},
                    {"code": 403},
                    "Forbidden",
                    {"@type": DIRECT_HTTP_RESPONSE, "headers": ["a"]},
                    {"@type": DIRECT_HTTP_RESPONSE, "headers": {"X-A": None}},
                ]
            },
            "validDuration": "-1s",
        }
    ) == [
        (
            ".status.details[0]['@type']",
            f"unknown detail type 'type.googleapis.com/google.rpc.RetryInfo' (known: {DIRECT_HTTP_RESPONSE})",
        ),
        (".status.details[1].code", f"{HTTP_CODE}, got 'Teapot'"),
        (".status.details[2].header", "unknown field (known: code, body, headers)"),
        (".status.details[2].code", f"{HTTP_CODE}, got 700"),
        (".status.details[2].body", "expected a string, got ['x']"),
        (".status.details[3]", "a detail needs an '@type' (a google.protobuf.Any)"),
        (".status.details[4]", "expected a mapping with an '@type' (a google.protobuf.Any), got 'Forbidden'"),
        (".status.details[5].headers", "expected a mapping of header name to value, got ['a']"),
        (".status.details[6].headers['X-A']", "expected a string, got None"),
        (".validDuration", "must not be negative, got -1s"),
    ]


def test_type_problems_come_from_the_params_reader():
    assert problems({"status": {"code": "PERMISSION_DENIED"}, "validUseCount": "many", "ttl": "1s"}) == [
        (".status.code", "expected an integer, got 'PERMISSION_DENIED'"),
        (".validUseCount", "expected an integer, got 'many'"),
        (".ttl", "unknown field (known: status, validDuration, validUseCount)"),
    ]


def test_registered_as_a_builtin_adapter():
    info = collect_adapters(make_plugin_manager(entry_points=False))["denier"]
    assert info.templates == ("checknothing", "listentry", "quota")
    assert info.params is Params
    handler = info.build(Env(handler="h", adapter="denier", params=read_params(Params, None), instances={}))
    for template in info.templates:
        assert callable(getattr(handler, TEMPLATES[template].method))
    handler.close()
    handler.close()  # idempotent


def test_the_docs_example_is_a_valid_handler():
    text = (Path(__file__).parents[3] / "docs" / "adapters" / "denier.md").read_text()
    (example,) = re.findall(r"```yaml\n(.*?)```", text, re.S)
    doc = yaml.safe_load(example)
    assert (doc["kind"], doc["apiVersion"], doc["spec"]["compiledAdapter"]) == (
        "handler",
        "config.istio.io/v1alpha2",
        "denier",
    )
    read_params(Params, doc["spec"].get("params"))
