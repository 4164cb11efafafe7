"""What `POST /debug/explain` is asked: one JSON object, read into a `Question` (docs/admin.md).

Exactly one of three keys says which front-end's decision to explain:

- `attributes`: a Mixer Check (`istio.mixer.v1.Mixer/Check`), attributes typed by the manifest in force
  (explain_values.py); with it, optionally `quotas` ({name: amount}), `best_effort` and `dedup_id`;
- `ext_authz`: Envoy's `envoy.service.auth.v3.CheckRequest` in its JSON form, made into a bag by the code
  the ext_authz front-end uses;
- `ratelimit`: Envoy's `envoy.service.ratelimit.v3.RateLimitRequest` in its JSON form (domain and
  descriptors), read by the code the rate limit service uses.

`BadRequest` names what is wrong: the key, the attribute, the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format

from ...api.envoy.service.auth.v3 import external_auth_pb2
from ...api.envoy.service.ratelimit.v3 import rls_pb2
from ...attribute import ValueType
from ...dispatch import QuotaRequest
from ...runtime.ratelimit import DescriptorRequest
from ..envoy.authz_attributes import AttributeView, BadAttributes
from ..envoy.ratelimit import BadRequest as BadRateLimitRequest
from ..envoy.ratelimit import decode as decode_rate_limit
from .explain_values import BadRequest, typed_attributes

__all__ = ["KINDS", "BadRequest", "Question", "parse_body", "read_question"]

MIXER_CHECK, EXT_AUTHZ, RATELIMIT = "attributes", "ext_authz", "ratelimit"
#: The keys that say what to explain, in the order the page offers them.
KINDS = (MIXER_CHECK, EXT_AUTHZ, RATELIMIT)
_CHECK_OPTIONS = frozenset({"quotas", "best_effort", "dedup_id"})
_INT64_MAX = (1 << 63) - 1


@dataclass(frozen=True)
class Question:
    """One decision to explain. `kind` is one of KINDS; `values` is the bag (not for RATELIMIT)."""

    kind: str
    values: dict[str, Any] = field(default_factory=dict)
    quotas: dict[str, QuotaRequest] = field(default_factory=dict)
    dedup_id: str = ""
    domain: str = ""
    descriptors: tuple[DescriptorRequest, ...] = ()
    request: Any = None  # the ext_authz CheckRequest or the RateLimitRequest, as parsed


def parse_body(text: bytes | str) -> Any:
    """The JSON of a request body; BadRequest saying where it is not JSON."""
    try:
        return json.loads(text)
    except UnicodeDecodeError as e:
        raise BadRequest(f"the body is not UTF-8: {e}") from None
    except json.JSONDecodeError as e:
        raise BadRequest(f"the body is not JSON: {e}") from None


def read_question(body: Any, manifest: Mapping[str, ValueType]) -> Question:
    """The Question in `body` (parsed JSON), its attributes typed by `manifest`."""
    if not isinstance(body, Mapping):
        raise BadRequest("expected a JSON object with one of " + ", ".join(f'"{k}"' for k in KINDS))
    kinds = [k for k in KINDS if k in body]
    if len(kinds) != 1:
        given = f"got {', '.join(kinds)}" if kinds else "got none"
        raise BadRequest(f"give exactly one of {', '.join(KINDS)} ({given})")
    kind = kinds[0]
    allowed = {kind} | (_CHECK_OPTIONS if kind == MIXER_CHECK else set())
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown key (with {kind} give only {', '.join(sorted(allowed))})")
    if kind == MIXER_CHECK:
        return _mixer_check(body, manifest)
    if kind == EXT_AUTHZ:
        return _ext_authz(body[EXT_AUTHZ])
    return _ratelimit(body[RATELIMIT])


def _mixer_check(body: Mapping[str, Any], manifest: Mapping[str, ValueType]) -> Question:
    values = typed_attributes(body[MIXER_CHECK], manifest)
    best_effort = body.get("best_effort", False)
    if not isinstance(best_effort, bool):
        raise BadRequest("best_effort: expected true or false")
    dedup_id = body.get("dedup_id", "")
    if not isinstance(dedup_id, str):
        raise BadRequest("dedup_id: expected a string")
    raw_quotas = body.get("quotas", {})
    if not isinstance(raw_quotas, Mapping):
        raise BadRequest("quotas: expected an object of quota name -> amount")
    quotas = {}
    for name, amount in raw_quotas.items():
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= _INT64_MAX:
            raise BadRequest(f"quotas.{name}: expected an amount (an integer, 0 or more), got {amount!r}")
        quotas[name] = QuotaRequest(amount, best_effort)
    return Question(MIXER_CHECK, values, quotas, dedup_id)


def _message(raw: Any, message: Any, key: str) -> Any:
    name = _envoy_name(message.DESCRIPTOR.full_name)
    if not isinstance(raw, Mapping):
        raise BadRequest(f"{key}: expected the JSON form of {name}")
    try:
        json_format.ParseDict(raw, message)
    except json_format.ParseError as e:
        raise BadRequest(f"{key}: not a {name}: {_envoy_name(str(e))}") from None
    return message


def _envoy_name(text: str) -> str:
    # Our generated messages live in a package of their own (protos/); users know Envoy's names.
    return text.replace("mixerd.envoy.", "envoy.")


def _ext_authz(raw: Any) -> Question:
    request = _message(raw, external_auth_pb2.CheckRequest(), EXT_AUTHZ)
    try:
        values = AttributeView(request.attributes).values()  # as the ext_authz front-end reads it
    except BadAttributes as e:
        raise BadRequest(f"{EXT_AUTHZ}: {e}") from None
    return Question(EXT_AUTHZ, values, dedup_id=values.get("request.id", ""), request=request)


def _ratelimit(raw: Any) -> Question:
    request = _message(raw, rls_pb2.RateLimitRequest(), RATELIMIT)
    try:
        domain, descriptors = decode_rate_limit(request)  # as the rate limit service reads it
    except BadRateLimitRequest as e:
        raise BadRequest(f"{RATELIMIT}: {e}") from None
    return Question(RATELIMIT, domain=domain, descriptors=tuple(descriptors), request=request)
