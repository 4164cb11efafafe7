"""Envoy's rate limit service on the routing table: descriptors matched, limits counted in one call.

Semantics are envoyproxy/ratelimit's (ENVOY.md section 4, docs/envoy/ratelimit.md):

- a request descriptor's entries walk the domain's descriptor tree one level per entry: key and value
  first, then a value with `*` wildcards (in config order), then the key alone; the limits apply only
  when the walk ends on the request's last entry (the same depth);
- a descriptor with a `limit` override from Envoy counts that limit instead (fixed window, no shadow);
- `replaces`: a limit whose name another matched limit of the request replaces is dropped;
- `unlimited` answers OK with the largest remaining; `requests_per_unit: 0` answers OVER_LIMIT for any
  hit without asking the backend; `shadow_mode` counts but always answers OK.

Every counted limit of one request goes to the domain's handler in ONE `handle_rate_limits` call,
bounded by the caller's deadline. The routing table binds each domain to its handler, so a config
change swaps domains and handlers together, and a request counts itself in the table's `inflight`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..adapter import HANDLE_RATE_LIMITS, Code, Duration, RateLimit, RateLimitCall, RateLimitResult
from ..config.ratelimit_model import (
    MAX_REQUESTS_PER_UNIT,
    UNIT_NAMES,
    UNIT_NS,
    CurrentLimit,
    DescriptorConfig,
    DescriptorTable,
    LimitPolicy,
    RateLimitDomain,
)
from .handlers import BuiltHandler

#: envoy.service.ratelimit.v3.RateLimitResponse.Code
OK, OVER_LIMIT = 1, 2
#: envoyproxy/ratelimit's NEAR_LIMIT_RATIO: a hit past this share of the limit is "near" it.
NEAR_LIMIT_RATIO = 0.8

# What became of one descriptor, for self metrics.
NO_LIMIT, UNLIMITED, WITHIN, NEAR, OVER, SHADOW = "none", "unlimited", "within", "near", "over", "shadow"


class RateLimitFailed(Exception):
    """The domain's handler could not answer (unavailable, raised, or missed the deadline); the message
    is safe to send to the caller."""


@dataclass(frozen=True, slots=True)
class DescriptorRequest:
    """One request descriptor: its entries, its hits, and Envoy's limit override if it sent one."""

    entries: tuple[tuple[str, str], ...]
    hits: int = 1
    override: CurrentLimit | None = None


@dataclass(frozen=True, slots=True)
class DescriptorVerdict:
    """One DescriptorStatus, plus what self metrics need (`stat`: the config descriptor's name)."""

    code: int = OK
    current: CurrentLimit | None = None
    remaining: int = 0
    reset: int = 0  # ns until the limit resets
    outcome: str = NO_LIMIT
    stat: str = ""
    hits: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    code: int
    statuses: tuple[DescriptorVerdict, ...]
    known: bool = True  # False: no ratelimitconfig has the domain
    backend_errors: int = 0  # limits the backend answered by its fail policy


_NO_LIMIT = DescriptorVerdict()
_UNLIMITED = DescriptorVerdict(remaining=MAX_REQUESTS_PER_UNIT, outcome=UNLIMITED)


@dataclass(frozen=True, slots=True)
class RateLimitRoute:
    """A domain and the handler method that counts its limits (None: the handler cannot)."""

    domain: RateLimitDomain
    handler: BuiltHandler
    method: tuple[Callable[..., Any], bool] | None


def bind_rate_limits(
    domains: Mapping[str, RateLimitDomain], handlers: Mapping[str, BuiltHandler]
) -> dict[str, RateLimitRoute]:
    """Each domain with its handler's `handle_rate_limits` (and whether to await it)."""
    out = {}
    for name, domain in domains.items():
        handler = handlers[domain.handler]
        out[name] = RateLimitRoute(domain, handler, handler.batch_method(HANDLE_RATE_LIMITS))
    return out


def match(
    table: DescriptorTable, entries: Sequence[tuple[str, str]]
) -> tuple[DescriptorConfig, tuple[tuple[str, str], ...]] | None:
    """The config descriptor a request descriptor ends on at its own depth, and the entries that name
    its counter (a shared wildcard counts under its pattern); None when the walk stops earlier."""
    level = table
    last = len(entries) - 1
    counter: list[tuple[str, str]] = []
    for i, (key, value) in enumerate(entries):
        found = level.exact.get((key, value))
        if found is None:
            for candidate in level.wildcards.get(key, ()):
                if candidate.pattern is not None and candidate.pattern.fullmatch(value):
                    found = candidate
                    break
        if found is None:
            found = level.any_value.get(key)
        if found is None:
            return None
        counter.append((key, found.value) if found.share_threshold and found.value else (key, value))
        if i == last:
            return found, tuple(counter)
        if not found.children:
            return None  # the request goes deeper than the config: no limit (envoyproxy/ratelimit)
        level = found.children
    return None


class TableSource(Protocol):
    @property
    def table(self) -> Any: ...  # a RoutingTable: `rate_limits` by domain, `inflight`


@dataclass(slots=True)
class _Planned:
    """One descriptor's limits left after `replaces`, and where their answers come from."""

    policies: list[LimitPolicy]
    counter: tuple[tuple[str, str], ...]
    hits: int
    shadow: bool
    stat: str
    calls: list[int]  # index into the request's calls, or -1 for a limit that blocks


class RateLimiter:
    """Decides ShouldRateLimit requests against the routing table in force."""

    def __init__(
        self, source: TableSource | None, clock: Callable[[], int], adapter_timeout: float = 5.0
    ) -> None:
        self._source = source
        self._clock = clock
        self._timeout = adapter_timeout

    def _deadline(self, timeout: float | None) -> float:
        # As Check: part of the caller's deadline is left for the answer itself.
        if timeout is None:
            return self._timeout
        return max(0.001, min(self._timeout, timeout * 0.8))

    def knows(self, domain: str) -> bool:
        """Whether the config in force has `domain`."""
        return self._source is not None and domain in self._source.table.rate_limits

    async def decide(
        self, domain: str, descriptors: Sequence[DescriptorRequest], timeout: float | None = None
    ) -> Decision:
        """The answer to one ShouldRateLimit; RateLimitFailed when the domain's handler cannot answer."""
        table = self._source.table if self._source is not None else None
        route = table.rate_limits.get(domain) if table is not None else None
        if route is None:
            return Decision(OK, tuple(_NO_LIMIT for _ in descriptors), known=False)
        table.inflight += 1
        try:
            return await self._decide(route, descriptors, timeout)
        finally:
            table.inflight -= 1

    async def _decide(
        self, route: RateLimitRoute, descriptors: Sequence[DescriptorRequest], timeout: float | None
    ) -> Decision:
        name = route.domain.domain
        verdicts: list[DescriptorVerdict | None] = []
        plans: list[_Planned | None] = []
        for d in descriptors:
            if d.override is not None:
                override = _override_policy(d.override)
                stat = "override:" + ".".join(k for k, _ in d.entries)
                plans.append(_Planned([override], d.entries, d.hits, False, stat, []))
                verdicts.append(None)
                continue
            found = match(route.domain.descriptors, d.entries)
            if found is None or not found[0].limits:
                plans.append(None)
                verdicts.append(_NO_LIMIT)
                continue
            node, counter = found
            plans.append(_Planned(list(node.limits), counter, d.hits, node.shadow_mode, node.stat_name, []))
            verdicts.append(None)
        _apply_replaces(plans)
        calls: list[RateLimitCall] = []
        for plan in plans:
            if plan is None:
                continue
            for policy in plan.policies:
                if policy.limit is None or policy.blocks:
                    plan.calls.append(-1)
                    continue
                plan.calls.append(len(calls))
                calls.append(RateLimitCall(name, plan.counter, policy.limit, plan.hits))
        results = await self._count(route, calls, timeout) if calls else []
        now = self._clock()
        errors = sum(1 for r in results if r.status != Code.OK)
        for i, plan in enumerate(plans):
            if plan is not None:
                verdicts[i] = _verdict(plan, results, now)
        statuses = tuple(v if v is not None else _NO_LIMIT for v in verdicts)
        code = OVER_LIMIT if any(v.code == OVER_LIMIT for v in statuses) else OK
        return Decision(code, statuses, True, errors)

    async def _count(
        self, route: RateLimitRoute, calls: list[RateLimitCall], timeout: float | None
    ) -> list[RateLimitResult]:
        handler = route.handler
        if route.method is None:
            why = handler.failure or f"{type(handler.handler).__name__} has no method {HANDLE_RATE_LIMITS}"
            raise RateLimitFailed(f"handler {handler.fqn} is unavailable: {why}")
        method, is_async = route.method
        deadline = self._deadline(timeout)
        try:
            results = method(calls)
            if is_async:
                async with asyncio.timeout(deadline):
                    results = await results
        except TimeoutError:
            raise RateLimitFailed(f"handler {handler.fqn}: no answer within {deadline:.3g}s") from None
        except Exception as e:
            raise RateLimitFailed(f"handler {handler.fqn}: {type(e).__name__}: {e}") from e
        if not isinstance(results, Sequence) or len(results) != len(calls):
            got = f"{len(results)} results" if isinstance(results, Sequence) else type(results).__name__
            raise RateLimitFailed(
                f"handler {handler.fqn}: {HANDLE_RATE_LIMITS} answered {got} for {len(calls)} limits"
            )
        for result in results:
            if not isinstance(result, RateLimitResult):
                kind = type(result).__name__
                raise RateLimitFailed(
                    f"handler {handler.fqn}: {HANDLE_RATE_LIMITS} returned {kind}, not a RateLimitResult"
                )
        return list(results)


def _override_policy(override: CurrentLimit) -> LimitPolicy:
    window = UNIT_NS[UNIT_NAMES[override.unit]]
    return LimitPolicy(override, RateLimit(override.requests_per_unit, Duration(window)))


def _apply_replaces(plans: list[_Planned | None]) -> None:
    """Drop every named limit that another matched limit of the request replaces."""
    replaced = {n for plan in plans if plan is not None for p in plan.policies for n in p.replaces}
    if not replaced:
        return
    for plan in plans:
        if plan is not None:
            plan.policies = [p for p in plan.policies if not (p.name and p.name in replaced)]


def _verdict(plan: _Planned, results: list[RateLimitResult], now: int) -> DescriptorVerdict:
    """One descriptor's status: the first limit over (in config order), else the one with the least left."""
    if not plan.policies:
        return _NO_LIMIT
    chosen: tuple[LimitPolicy, RateLimitResult] | None = None
    over = False
    for policy, index in zip(plan.policies, plan.calls, strict=True):
        if policy.limit is None:
            return _UNLIMITED  # alone on its descriptor
        result = results[index] if index >= 0 else _blocked(policy, plan.hits, now)
        if not result.allowed:
            if not over:
                chosen, over = (policy, result), True
        elif not over and (chosen is None or result.remaining < chosen[1].remaining):
            chosen = (policy, result)
    assert chosen is not None
    policy, result = chosen
    max_amount = policy.limit.max_amount if policy.limit is not None else 0
    if over:
        outcome = SHADOW if plan.shadow else OVER
    elif max_amount - result.remaining > int(max_amount * NEAR_LIMIT_RATIO):
        outcome = NEAR
    else:
        outcome = WITHIN
    return DescriptorVerdict(
        OVER_LIMIT if outcome == OVER else OK,
        policy.current,
        min(max(result.remaining, 0), MAX_REQUESTS_PER_UNIT),
        max(int(result.reset), 0),
        outcome,
        plan.stat,
        plan.hits,
    )


def _blocked(policy: LimitPolicy, hits: int, now: int) -> RateLimitResult:
    """`requests_per_unit: 0`: over for any hit, until the current (epoch-aligned) window ends."""
    window = policy.limit.window if policy.limit is not None else 1
    return RateLimitResult(hits == 0, 0, Duration(window - now % window))
