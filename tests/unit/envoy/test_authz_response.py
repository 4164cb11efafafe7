"""Check verdicts as ext_authz CheckResponses (mixer/server/envoy/authz_response.py)."""

from __future__ import annotations

import pytest

from mixerd.adapter import Code
from mixerd.api.envoy.config.core.v3 import base_pb2
from mixerd.dispatch import ALLOW, APPEND, REMOVE, REPLACE, CheckOutcome, HeaderOperation
from mixerd.server.envoy.authz_response import CheckResponse, build_response, http_status, response_bytes

OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
ADD = base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD


def headers(options) -> list[tuple[str, str, int]]:
    return [(o.header.key, o.header.value, o.append_action) for o in options]


def test_a_plain_allow_is_ok_with_an_empty_ok_response() -> None:
    response = build_response(ALLOW)
    assert response.HasField("status") and response.status.code == 0
    assert response.WhichOneof("http_response") == "ok_response"
    assert response.ok_response == CheckResponse().ok_response
    assert CheckResponse.FromString(response_bytes(ALLOW)) == response


def test_an_allow_carries_the_header_operations() -> None:
    outcome = CheckOutcome(
        request_header_operations=(
            HeaderOperation("x-user", "bob", REPLACE),
            HeaderOperation("x-tag", "a", APPEND),
            HeaderOperation("x-tag", "b", APPEND),
            HeaderOperation("x-debug", "", REMOVE),
        ),
        response_header_operations=(
            HeaderOperation("x-served-by", "mixerd", REPLACE),
            HeaderOperation("set-cookie", "a=1", APPEND),
            HeaderOperation("x-gone", "", REMOVE),  # no ext_authz form: dropped
        ),
    )
    ok = build_response(outcome).ok_response
    assert headers(ok.headers) == [("x-user", "bob", OVERWRITE), ("x-tag", "a", ADD), ("x-tag", "b", ADD)]
    assert list(ok.headers_to_remove) == ["x-debug"]
    assert headers(ok.response_headers_to_add) == [
        ("x-served-by", "mixerd", OVERWRITE),
        ("set-cookie", "a=1", ADD),
    ]


def test_a_denial_with_a_direct_response() -> None:
    outcome = CheckOutcome(
        status_code=Code.UNAUTHENTICATED,
        message="login.handler.istio-system:log in first",
        direct_response_code=302,
        direct_response_body="redirecting",
        response_header_operations=(
            HeaderOperation("Location", "https://login/", REPLACE),
            HeaderOperation("Set-Cookie", "a=1", APPEND),
            HeaderOperation("Set-Cookie", "b=2", APPEND),
        ),
    )
    response = build_response(outcome)
    assert (response.status.code, response.status.message) == (16, "login.handler.istio-system:log in first")
    denied = response.denied_response
    assert (denied.status.code, denied.body) == (302, "redirecting")
    assert headers(denied.headers) == [
        ("Location", "https://login/", OVERWRITE),
        ("Set-Cookie", "a=1", ADD),
        ("Set-Cookie", "b=2", ADD),
    ]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (Code.PERMISSION_DENIED, 403),
        (Code.UNAUTHENTICATED, 401),
        (Code.RESOURCE_EXHAUSTED, 429),
        (Code.NOT_FOUND, 404),
        (Code.INVALID_ARGUMENT, 400),
        (Code.UNAVAILABLE, 503),
        (Code.FAILED_PRECONDITION, 412),
        (Code.DATA_LOSS, 500),
    ],
)
def test_a_denial_without_a_direct_response_maps_its_code(code: Code, status: int) -> None:
    outcome = CheckOutcome(status_code=code, message="deny.handler.ns:no")
    response = build_response(outcome)
    assert http_status(outcome) == status
    assert response.WhichOneof("http_response") == "denied_response"
    assert (response.denied_response.status.code, response.denied_response.body) == (
        status,
        "deny.handler.ns:no",
    )
    assert (response.status.code, response.status.message) == (code, "deny.handler.ns:no")


def test_request_header_operations_are_not_applied_to_a_denial() -> None:
    outcome = CheckOutcome(
        status_code=Code.PERMISSION_DENIED, request_header_operations=(HeaderOperation("x-a", "1"),)
    )
    assert len(build_response(outcome).denied_response.headers) == 0
