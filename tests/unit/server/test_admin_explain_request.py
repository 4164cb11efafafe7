"""What `POST /debug/explain` reads: attributes typed by the manifest (each type, and a precise message for
each way to get it wrong), the three kinds of question, and values shown back with secrets masked."""

from __future__ import annotations

from typing import Any

import pytest

from mixerd.adapter import CheckResult, Code
from mixerd.attribute import BUILTIN_MANIFEST, AttributeManifest, Duration, Timestamp, ValueType
from mixerd.dispatch import QuotaRequest
from mixerd.server.admin.explain_request import BadRequest, parse_body, read_question
from mixerd.server.admin.explain_trace import answer
from mixerd.server.admin.explain_values import shown, typed_attributes, typed_value

CUSTOM = BUILTIN_MANIFEST.merged(
    AttributeManifest.from_yaml(
        """
apiVersion: config.istio.io/v1alpha2
kind: attributemanifest
metadata: {name: custom, namespace: istio-system}
spec:
  name: custom
  attributes:
    custom.score: {valueType: DOUBLE}
    custom.email: {valueType: EMAIL_ADDRESS}
"""
    )
)


@pytest.mark.parametrize(
    ("name", "value", "typed"),
    [
        ("destination.service.host", "reviews", "reviews"),
        ("custom.email", "a@b.c", "a@b.c"),
        ("request.size", 42, 42),
        ("request.size", -(1 << 63), -(1 << 63)),
        ("custom.score", 1, 1.0),
        ("custom.score", 1.5, 1.5),
        ("connection.mtls", True, True),
        ("request.time", "2020-01-01T00:00:00.5Z", Timestamp.parse("2020-01-01T00:00:00.5Z")),
        ("response.duration", "1m30s", Duration.parse("90s")),
        ("source.ip", "10.0.0.1", b"\n\x00\x00\x01"),
        ("source.ip", "::1", b"\x00" * 15 + b"\x01"),
        ("request.headers", {":path": "/a", "x-user": ""}, {":path": "/a", "x-user": ""}),
    ],
)
def test_each_type_reads_its_json_form(name: str, value: Any, typed: Any) -> None:
    got = typed_attributes({name: value}, CUSTOM)[name]
    assert (got, type(got)) == (typed, type(typed))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"no.such": 1}, "attributes.no.such: no such attribute in the manifest in force"),
        (
            {"destination.service.host": 7},
            "attributes.destination.service.host (STRING): expected a string, got an integer 7",
        ),
        ({"request.size": "42"}, "attributes.request.size (INT64): expected an integer, got a string '42'"),
        ({"request.size": True}, "attributes.request.size (INT64): expected an integer, got a boolean true"),
        ({"request.size": 1.5}, "attributes.request.size (INT64): expected an integer, got a number 1.5"),
        (
            {"request.size": 1 << 63},
            "attributes.request.size (INT64): 9223372036854775808 is out of the int64 range",
        ),
        ({"custom.score": "1"}, "attributes.custom.score (DOUBLE): expected a number, got a string '1'"),
        (
            {"connection.mtls": "true"},
            "attributes.connection.mtls (BOOL): expected true or false, got a string 'true'",
        ),
        ({"request.time": 0}, "attributes.request.time (TIMESTAMP): expected an RFC 3339 timestamp"),
        (
            {"request.time": "2020-01-01"},
            "attributes.request.time (TIMESTAMP): '2020-01-01' is not an RFC 3339",
        ),
        ({"response.duration": "10"}, "attributes.response.duration (DURATION): '10' is not a duration"),
        (
            {"source.ip": "10.0.0.300"},
            "attributes.source.ip (IP_ADDRESS): expected an IPv4 or IPv6 address, got",
        ),
        (
            {"request.headers": {"x": 1}},
            "attributes.request.headers (STRING_MAP): ['x']: expected a string, got",
        ),
        (
            {"request.headers": None},
            "attributes.request.headers (STRING_MAP): expected an object of strings, got null",
        ),
        (
            {"request.headers": []},
            "attributes.request.headers (STRING_MAP): expected an object of strings, got an",
        ),
    ],
)
def test_a_wrong_value_names_the_attribute_its_type_and_what_came(raw: Any, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        typed_attributes(raw, CUSTOM)
    assert str(caught.value).startswith(message), str(caught.value)


def test_attributes_must_be_an_object() -> None:
    with pytest.raises(
        BadRequest, match=r"^attributes: expected an object of attribute name -> value, got an array"
    ):
        typed_attributes([], BUILTIN_MANIFEST)


def test_a_long_value_is_not_quoted_whole() -> None:
    with pytest.raises(ValueError, match=r"^expected an integer, got a string$"):
        typed_value(ValueType.INT64, "x" * 100)


def test_a_mixer_check_question_with_quotas() -> None:
    question = read_question(
        {
            "attributes": {"request.size": 1},
            "quotas": {"requestcount": 2},
            "best_effort": True,
            "dedup_id": "d",
        },
        BUILTIN_MANIFEST,
    )
    assert (question.kind, question.values, question.quotas, question.dedup_id) == (
        "attributes",
        {"request.size": 1},
        {"requestcount": QuotaRequest(2, True)},
        "d",
    )


def test_an_ext_authz_question_is_the_front_end_s_bag() -> None:
    request = {
        "attributes": {"request": {"http": {"id": "r-1", "path": "/a?b=c", "headers": {"x-user": "bob"}}}}
    }
    question = read_question({"ext_authz": request}, BUILTIN_MANIFEST)
    assert question.kind == "ext_authz" and question.dedup_id == "r-1"
    assert question.values["request.query_params"] == {"b": "c"}
    assert question.values["request.headers"] == {"x-user": "bob"}


def test_a_rate_limit_question_is_the_service_s_descriptors() -> None:
    request = {
        "domain": "edge",
        "hits_addend": 3,
        "descriptors": [
            {"entries": [{"key": "a", "value": "1"}]},
            {"entries": [{"key": "b"}], "hits_addend": 5},
        ],
    }
    question = read_question({"ratelimit": request}, BUILTIN_MANIFEST)
    assert question.domain == "edge"
    assert [(d.entries, d.hits) for d in question.descriptors] == [((("a", "1"),), 3), ((("b", ""),), 5)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "give exactly one of attributes, ext_authz, ratelimit (got none)"),
        ({"attributes": {}, "extra": 1}, "extra: unknown key (with attributes give only"),
        (
            {"ratelimit": {"domain": "d", "descriptors": [{}]}, "quotas": {}},
            "quotas: unknown key (with ratelimit",
        ),
        ({"attributes": {}, "best_effort": 1}, "best_effort: expected true or false"),
        ({"attributes": {}, "dedup_id": 1}, "dedup_id: expected a string"),
        ({"attributes": {}, "quotas": []}, "quotas: expected an object of quota name -> amount"),
        (
            {"attributes": {}, "quotas": {"q": -1}},
            "quotas.q: expected an amount (an integer, 0 or more), got -1",
        ),
        ({"ext_authz": []}, "ext_authz: expected the JSON form of envoy.service.auth.v3.CheckRequest"),
        (
            {
                "ext_authz": {
                    "attributes": {
                        "source": {"address": {"socketAddress": {"address": "::1", "portValue": 70000}}}
                    }
                }
            },
            "ext_authz: attributes.source.address.socket_address.port_value: 70000 is",
        ),
        ({"ratelimit": {"domain": "d"}}, "ratelimit: descriptors: must not be empty"),
        ({"ratelimit": {"domain": 5}}, "ratelimit: not a envoy.service.ratelimit.v3.RateLimitRequest:"),
    ],
)
def test_a_bad_question_says_what_is_wrong(body: Any, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        read_question(body, BUILTIN_MANIFEST)
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_body_that_is_not_json() -> None:
    with pytest.raises(BadRequest, match=r"^the body is not JSON: "):
        parse_body(b"{")
    with pytest.raises(BadRequest, match=r"^the body is not UTF-8: "):
        parse_body(b"\xff")


def test_values_are_shown_as_json_with_secrets_masked() -> None:
    assert shown(
        {
            "request.headers": {"authorization": "Bearer x", "Cookie": "a=b", "x-user": "bob"},
            "request.api_key": "k",
            "source.ip": b"\n\x00\x00\x01",
            "request.time": Timestamp.parse("2020-01-01T00:00:00Z"),
            "response.duration": Duration.parse("10ms"),
            "backend": "redis://:hunter2@redis:6379",
            "empty.token": "",
        }
    ) == {
        "request.headers": {"authorization": "***", "Cookie": "***", "x-user": "bob"},
        "request.api_key": "***",
        "source.ip": "10.0.0.1",
        "request.time": "2020-01-01T00:00:00Z",
        "response.duration": "10ms",
        "backend": "redis://:***@redis:6379",
        "empty.token": "",  # nothing to hide: shown as empty
    }


def test_a_check_result_is_shown_with_its_code_by_name() -> None:
    assert answer(CheckResult(Code.PERMISSION_DENIED, "no", Duration.parse("5s"), 3)) == {
        "code": "PERMISSION_DENIED",
        "message": "no",
        "valid_duration": "5s",
        "valid_use_count": 3,
    }
