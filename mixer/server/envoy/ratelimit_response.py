"""A rate limit decision as a RateLimitResponse: statuses, and envoyproxy/ratelimit's optional extras.

- `duration_until_reset` in whole seconds (the decision has it so), as envoyproxy/ratelimit answers.
- Response headers (`ratelimit_limit_response_headers_enabled`, upstream's
  LIMIT_RESPONSE_HEADERS_ENABLED): `RateLimit-Limit`, `-Remaining` and `-Reset` (names from the
  settings), describing one status: the last one over its limit (not in quota mode), else the one with
  the least remaining among those with a limit. The limit header is the number alone (upstream sends the
  draft-03 header's required part only); the reset header is whole seconds. They are sent whatever the
  overall code, also when the global shadow mode turned it OK. Envoy adds them to its response.
- Dynamic metadata (`ratelimit_response_dynamic_metadata`, upstream's RESPONSE_DYNAMIC_METADATA): the
  request (`domain`, `descriptors` with their `entries` as "key=value", `limit` and `hitsAddend` when
  sent, the request's `hitsAddend` when not 0) and `metadata`, the config metadata of every descriptor
  that passed, merged in request order (the first value of a key wins; mappings merge).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...api.envoy.service.ratelimit.v3 import rls_pb2
from ...runtime.ratelimit import OVER_LIMIT, Decision

_S = 1_000_000_000
_Unit = rls_pb2.RateLimitResponse.RateLimit.Unit


@dataclass(frozen=True, slots=True)
class ResponseOptions:
    headers: bool = False
    limit_header: str = "RateLimit-Limit"
    remaining_header: str = "RateLimit-Remaining"
    reset_header: str = "RateLimit-Reset"
    dynamic_metadata: bool = False

    @classmethod
    def of(cls, settings: Any) -> ResponseOptions:
        return cls(
            settings.ratelimit_limit_response_headers_enabled,
            settings.ratelimit_limit_limit_header,
            settings.ratelimit_limit_remaining_header,
            settings.ratelimit_limit_reset_header,
            settings.ratelimit_response_dynamic_metadata,
        )


NO_EXTRAS = ResponseOptions()


def encode(decision: Decision, request: Any = None, options: ResponseOptions = NO_EXTRAS) -> Any:
    """The RateLimitResponse for `decision` (on `request`, which dynamic metadata describes)."""
    response = rls_pb2.RateLimitResponse(overall_code=decision.code)
    add = response.statuses.add
    for verdict in decision.statuses:
        status = add(code=verdict.code, limit_remaining=verdict.remaining)
        current = verdict.current
        if current is not None:
            limit = status.current_limit
            limit.requests_per_unit = current.requests_per_unit
            limit.unit = current.unit
            if current.name:
                limit.name = current.name
            status.duration_until_reset.FromNanoseconds(verdict.reset)
    if options.headers and 0 <= decision.limiting < len(decision.statuses):
        chosen = decision.statuses[decision.limiting]
        assert chosen.current is not None
        for name, value in (
            (options.limit_header, chosen.current.requests_per_unit),
            (options.remaining_header, chosen.remaining),
            (options.reset_header, chosen.reset // _S),
        ):
            response.response_headers_to_add.add(key=name, value=str(value))
    if options.dynamic_metadata and request is not None:
        response.dynamic_metadata.update(dynamic_metadata(decision, request))
    return response


def dynamic_metadata(decision: Decision, request: Any) -> dict[str, Any]:
    """What envoyproxy/ratelimit puts in `dynamic_metadata` (see the module docstring)."""
    descriptors = []
    for descriptor in request.descriptors:
        one: dict[str, Any] = {"entries": [f"{e.key}={e.value}" for e in descriptor.entries]}
        if descriptor.HasField("limit"):
            one["limit"] = _override_text(descriptor.limit)
        if descriptor.HasField("hits_addend"):
            one["hitsAddend"] = descriptor.hits_addend.value
        descriptors.append(one)
    out: dict[str, Any] = {"domain": request.domain, "descriptors": descriptors}
    if request.hits_addend:
        out["hitsAddend"] = request.hits_addend
    passed: dict[str, Any] = {}
    for status in decision.statuses:
        if not status.unlimited and status.code != OVER_LIMIT and status.metadata:
            _merge(passed, status.metadata)
    if passed:
        out["metadata"] = passed
    return out


def _merge(into: dict[str, Any], more: Mapping[str, Any]) -> None:
    for key, value in more.items():
        there = into.get(key)
        if there is None and key not in into:
            into[key] = _copy(value)
        elif isinstance(there, dict) and isinstance(value, Mapping):
            _merge(there, value)


def _copy(value: Any) -> Any:
    return {k: _copy(v) for k, v in value.items()} if isinstance(value, Mapping) else value


def _override_text(limit: Any) -> str:
    """A RateLimitOverride as Go's protobuf text prints it (fields at their zero value left out)."""
    parts = []
    if limit.requests_per_unit:
        parts.append(f"requests_per_unit:{limit.requests_per_unit}")
    if limit.unit:
        parts.append(f"unit:{_unit_name(limit.unit)}")
    return " ".join(parts)


def _unit_name(unit: int) -> str:
    try:
        return _Unit.Name(unit)
    except ValueError:
        return str(unit)
