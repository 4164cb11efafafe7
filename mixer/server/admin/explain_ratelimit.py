"""A rate limit request explained: answered as the rate limit service would answer it, counting nothing.

The service's own `RateLimiter` decides, over the routing table in force, with the domain's handler
stood in for by `_Looking`: it records each limit the request would count and asks the handler with
`hits` 0 (a look: the counter as it is, nothing counted, as envoyproxy/ratelimit's
STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT looks first), then answers as if the hits had been asked for.
So the verdict, statuses and response are the service's, and the counters stay as they were.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from google.protobuf import json_format

from ...adapter import Code, RateLimitCall, RateLimitResult
from ...config.ratelimit_model import UNIT_NAMES, LimitPolicy
from ...runtime import RoutingTable
from ...runtime.ratelimit import (
    OVER_LIMIT,
    Decision,
    DescriptorRequest,
    RateLimiter,
    RateLimitFailed,
    RateLimitOptions,
    RateLimitRoute,
    match,
)
from ..envoy.ratelimit_response import ResponseOptions, encode
from .explain_trace import code_name
from .explain_values import shown

Data = dict[str, Any]
_CODES = {1: "OK", 2: "OVER_LIMIT"}


class _Looking:
    """A domain handler's `handle_rate_limits` that only looks (see the module docstring)."""

    def __init__(self, method: Callable[..., Any], is_async: bool) -> None:
        self._method = method
        self._is_async = is_async
        self.asked: list[tuple[RateLimitCall, Any]] = []  # each call, and what the look found

    async def __call__(self, calls: list[RateLimitCall]) -> Any:
        results = self._method([dataclasses.replace(c, hits=0) for c in calls])
        if self._is_async:
            results = await results
        if not isinstance(results, Sequence) or len(results) != len(calls):
            return results  # the limiter says what is wrong with it
        answers = [_as_asked(c, r) for c, r in zip(calls, results, strict=True)]
        self.asked.extend(zip(calls, answers, strict=True))
        return answers


def _as_asked(call: RateLimitCall, look: Any) -> Any:
    """What asking for the call's hits would answer, from a look at the counter."""
    if not isinstance(look, RateLimitResult) or look.status != Code.OK:
        return look  # a failure, or the fail policy's answer: the same whatever the hits
    return RateLimitResult(call.hits <= look.remaining, look.remaining, look.reset)


@dataclasses.dataclass
class _OneDomain:
    """The routing table as the limiter reads it, with one domain's handler looking only."""

    rate_limits: Mapping[str, RateLimitRoute]
    inflight: int = 0


@dataclasses.dataclass
class _Source:
    table: Any


async def explain_rate_limit(
    table: RoutingTable,
    settings: Any,
    clock: Callable[[], int],
    domain: str,
    descriptors: Sequence[DescriptorRequest],
    request: Any,
) -> Data:
    """The explanation of one RateLimitRequest (its domain and decoded descriptors) against `table`."""
    route = table.rate_limits.get(domain)
    looking = None
    routes: dict[str, RateLimitRoute] = {}
    if route is not None:
        if route.method is not None:
            looking = _Looking(*route.method)
            route = RateLimitRoute(route.domain, route.handler, (looking, True))
        routes[domain] = route
    # Looks count nothing whatever this option says, and the answer is the same without it.
    options = dataclasses.replace(RateLimitOptions.of(settings), stop_when_over=False)
    limiter = RateLimiter(_Source(_OneDomain(routes)), clock, settings.adapter_timeout, options)
    out: Data = {
        "api": "ratelimit",
        "generation": table.generation,
        "dry_run": True,
        "domain": domain,
        "known": route is not None,
        "ratelimitconfig": route.domain.resource if route is not None else None,
        "handler": route.handler.fqn if route is not None else None,
    }
    table.inflight += 1  # the handlers of this table stay open until the explanation is made
    try:
        decision = await limiter.decide(domain, descriptors)
    except RateLimitFailed as e:
        out["error"] = f"UNAVAILABLE: rate limit domain {domain!r}: {e}"
        decision = None
    finally:
        table.inflight -= 1
    asked = list(looking.asked) if looking is not None else []
    out["descriptors"] = _descriptors(route, descriptors, decision, asked)
    if decision is not None:
        out["overall_code"] = _CODES.get(decision.code, str(decision.code))
        out["global_shadow_mode"] = decision.global_shadow
        response = encode(decision, request, ResponseOptions.of(settings))
        out["response"] = json_format.MessageToDict(response, preserving_proto_field_name=True)
    return out


def _descriptors(
    route: RateLimitRoute | None,
    descriptors: Sequence[DescriptorRequest],
    decision: Decision | None,
    asked: list[tuple[RateLimitCall, Any]],
) -> list[Data]:
    found = [
        match(route.domain.descriptors, d.entries) if route is not None and d.override is None else None
        for d in descriptors
    ]
    replaced = {n for f in found if f is not None for p in f.node.limits for n in p.replaces}
    out = []
    for i, (d, f) in enumerate(zip(descriptors, found, strict=True)):
        entry: Data = {
            "entries": [{"key": k, "value": shown(v, k)} for k, v in d.entries],
            "hits": d.hits,
            "override": _current(d.override) if d.override is not None else None,
            "matched": None,
        }
        counter, counted = d.entries, 0
        if d.override is not None:
            counted = 1
        elif f is not None:
            counter = f.counter
            node = f.node
            limits = [_limit(p, replaced) for p in node.limits]
            counted = sum(1 for limit in limits if limit["counted"])
            entry["matched"] = {
                "descriptor": f.rollup or f.stat,
                "stat": f.stat,
                "shadow_mode": node.shadow_mode,
                "quota_mode": node.quota_mode,
                "limits": limits,
            }
        # The limiter asks in descriptor order: this descriptor's calls come next, on its counter.
        mine = []
        while counted and asked and asked[0][0].entries == counter:
            mine.append(asked.pop(0))
            counted -= 1
        entry["would_ask"] = [_asked(call, result) for call, result in mine]
        if decision is not None:
            status = decision.statuses[i]
            entry["status"] = {
                "code": "OVER_LIMIT" if status.code == OVER_LIMIT else "OK",
                "current_limit": _current(status.current) if status.current is not None else None,
                "limit_remaining": status.remaining,
                "unlimited": status.unlimited,
            }
        out.append(entry)
    return out


def _limit(policy: LimitPolicy, replaced: set[str]) -> Data:
    gone = bool(policy.name) and policy.name in replaced and not policy.unlimited
    return {
        "name": policy.name,
        "requests_per_unit": policy.current.requests_per_unit if policy.current is not None else None,
        "unit": UNIT_NAMES.get(policy.current.unit, "") if policy.current is not None else None,
        "unlimited": policy.unlimited,
        "replaces": sorted(policy.replaces),
        "replaced": gone,
        "blocks": policy.blocks,
        "counted": not (gone or policy.unlimited or policy.blocks),
    }


def _current(limit: Any) -> Data:
    return {
        "requests_per_unit": limit.requests_per_unit,
        "unit": UNIT_NAMES.get(limit.unit, str(limit.unit)),
        "name": limit.name,
    }


def _asked(call: RateLimitCall, result: Any) -> Data:
    out: Data = {
        "entries": [{"key": k, "value": shown(v, k)} for k, v in call.entries],
        "hits": call.hits,
        "limit": {
            "max_amount": call.limit.max_amount,
            "window": str(call.limit.window),
            "algorithm": call.limit.algorithm.name,
        },
        "counted": False,
    }
    if isinstance(result, RateLimitResult):
        out["remaining_now"] = result.remaining
        out["would_be_allowed"] = result.allowed
        if result.status != Code.OK:
            out["backend"] = f"{code_name(result.status)}: {result.message} (the fail policy answered)"
    return out
