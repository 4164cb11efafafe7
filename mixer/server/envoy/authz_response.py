"""A Check verdict (CheckOutcome) as Envoy's ext_authz v3 CheckResponse.

- OK: `status` OK and an `ok_response`. Request header operations: REPLACE -> `headers` with
  OVERWRITE_IF_EXISTS_OR_ADD, APPEND -> `headers` with APPEND_IF_EXISTS_OR_ADD, REMOVE ->
  `headers_to_remove`; response header operations go to `response_headers_to_add` the same way.
- Denied (any other code): `status` with the google.rpc code and message, and a `denied_response` with
  the HTTP status of the direct response, else one mapped from the code (PERMISSION_DENIED 403,
  UNAUTHENTICATED 401, RESOURCE_EXHAUSTED 429, ...: mixerd.runtime.check.http_status_for), the
  direct response body, else the status message, and the response header operations as headers.

A response header REMOVE has no ext_authz form (Envoy can add response headers, not remove them), so
it is dropped; so are request header operations on a denial (Mixer applied them only to allowed
requests, and the dispatcher never sets them on one).
"""

from __future__ import annotations

from collections.abc import Iterable

from ...api.envoy.config.core.v3 import base_pb2
from ...api.envoy.service.auth.v3 import external_auth_pb2
from ...dispatch import APPEND, OK, REMOVE, CheckOutcome, HeaderOperation
from ...runtime.check import http_status_for

CheckResponse = external_auth_pb2.CheckResponse
_HeaderValueOption = base_pb2.HeaderValueOption
_APPEND_ACTION = {
    APPEND: _HeaderValueOption.APPEND_IF_EXISTS_OR_ADD,
}
_OVERWRITE = _HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def _add_headers(target: object, operations: Iterable[HeaderOperation]) -> None:
    """Append one HeaderValueOption per REPLACE or APPEND operation to the repeated field `target`."""
    for op in operations:
        if op.operation == REMOVE:
            continue
        option = target.add()  # type: ignore[attr-defined]
        option.header.key = op.name
        option.header.value = op.value
        option.append_action = _APPEND_ACTION.get(op.operation, _OVERWRITE)


def http_status(outcome: CheckOutcome) -> int:
    """The HTTP status Envoy answers a denied request with."""
    return outcome.direct_response_code or http_status_for(outcome.status_code)


def build_response(outcome: CheckOutcome) -> CheckResponse:
    response = CheckResponse()
    response.status.code = outcome.status_code  # assigning (even 0) marks the status present
    if outcome.message:
        response.status.message = outcome.message
    if outcome.status_code == OK:
        ok = response.ok_response
        ok.SetInParent()
        _add_headers(ok.headers, outcome.request_header_operations)
        ok.headers_to_remove.extend(
            op.name for op in outcome.request_header_operations if op.operation == REMOVE
        )
        _add_headers(ok.response_headers_to_add, outcome.response_header_operations)
        return response
    denied = response.denied_response
    denied.status.code = http_status(outcome)  # type: ignore[assignment]
    denied.body = outcome.direct_response_body or outcome.message
    _add_headers(denied.headers, outcome.response_header_operations)
    return response


def response_bytes(outcome: CheckOutcome) -> bytes:
    """`build_response(outcome)`, serialized."""
    return build_response(outcome).SerializeToString()
