"""RateLimitRequest in, RateLimitResponse out (mixer/server/envoy/ratelimit.py): what the wire carries to
the decision and back, and the precise complaint for each malformed request."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format

from mixerd.api.envoy.service.ratelimit.v3 import rls_pb2
from mixerd.config.ratelimit_model import CurrentLimit
from mixerd.runtime.ratelimit import OK, OVER_LIMIT, Decision, DescriptorRequest, DescriptorVerdict
from mixerd.server.envoy.ratelimit import BadRequest, decode, encode


def request(data: dict[str, Any]) -> Any:
    return json_format.ParseDict(data, rls_pb2.RateLimitRequest())


def entries(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {"entries": [{"key": k, "value": v} for k, v in pairs]}


def test_hits_come_from_the_descriptor_else_the_request_else_one() -> None:
    domain, descriptors = decode(
        request(
            {
                "domain": "edge",
                "hitsAddend": 5,
                "descriptors": [
                    entries(("a", "1")),
                    {**entries(("b", "2"), ("c", "3")), "hitsAddend": 0},
                    {**entries(("d", "")), "hitsAddend": 9},
                ],
            }
        )
    )
    assert domain == "edge"
    assert descriptors == [
        DescriptorRequest((("a", "1"),), 5),
        DescriptorRequest((("b", "2"), ("c", "3")), 0),  # an explicit 0: look without counting
        DescriptorRequest((("d", ""),), 9),
    ]
    _, [only] = decode(request({"domain": "edge", "descriptors": [entries(("a", "1"))]}))
    assert only.hits == 1


def test_a_limit_override_is_passed_on() -> None:
    _, [descriptor] = decode(
        request(
            {
                "domain": "edge",
                "descriptors": [{**entries(("a", "1")), "limit": {"requestsPerUnit": 7, "unit": "HOUR"}}],
            }
        )
    )
    assert descriptor.override == CurrentLimit(7, 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"descriptors": [entries(("a", "1"))]}, "domain: must not be empty"),
        ({"domain": "edge"}, "descriptors: must not be empty (send at least one descriptor)"),
        (
            {"domain": "edge", "descriptors": [entries(("a", "1")), {}]},
            "descriptors[1].entries: must not be empty",
        ),
        (
            {"domain": "edge", "descriptors": [entries(("a", "1"), ("", "x"))]},
            "descriptors[0].entries[1].key: must not be empty",
        ),
        (
            {"domain": "edge", "descriptors": [{**entries(("a", "1")), "limit": {"requestsPerUnit": 1}}]},
            "descriptors[0].limit.unit: UNKNOWN is not one of SECOND, MINUTE, HOUR, DAY, MONTH, YEAR, WEEK",
        ),
        (
            {"domain": "edge", "descriptors": [{**entries(("a", "1")), "limit": {"unit": 42}}]},
            "descriptors[0].limit.unit: 42 is not one of SECOND, MINUTE, HOUR, DAY, MONTH, YEAR, WEEK",
        ),
    ],
)
def test_a_malformed_request_names_its_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest) as e:
        decode(request(data))
    assert str(e.value) == message


def test_the_response_has_one_status_per_descriptor_in_order() -> None:
    decision = Decision(
        OVER_LIMIT,
        (
            DescriptorVerdict(OK, CurrentLimit(10, 1, "per-ip"), 9, 250_000_000),
            DescriptorVerdict(OK),  # no limit
            DescriptorVerdict(OVER_LIMIT, CurrentLimit(0, 2), 0, 0),
        ),
    )
    assert json_format.MessageToDict(encode(decision)) == {
        "overallCode": "OVER_LIMIT",
        "statuses": [
            {
                "code": "OK",
                "currentLimit": {"requestsPerUnit": 10, "unit": "SECOND", "name": "per-ip"},
                "limitRemaining": 9,
                "durationUntilReset": "0.250s",
            },
            {"code": "OK"},
            {"code": "OVER_LIMIT", "currentLimit": {"unit": "MINUTE"}, "durationUntilReset": "0s"},
        ],
    }
