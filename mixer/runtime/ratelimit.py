"""Envoy's rate limit service on the routing table: descriptors matched, limits counted in one call.

Semantics are envoyproxy/ratelimit's, as its code behaves (ENVOY.md section 4, docs/envoy/ratelimit.md):

- a request descriptor is matched against its domain's tree (ratelimit_match.py); a descriptor with a
  `limit` override from Envoy counts that limit instead (fixed window, no shadow or quota mode);
- `replaces`: a limit whose name another matched limit of the request replaces is dropped;
- `unlimited` answers OK with the largest remaining; `requests_per_unit: 0` answers OVER_LIMIT for any
  hit without asking the backend; `shadow_mode` counts but answers OK;
- `quota_mode` (per descriptor, or every one with the global setting): its status says OVER_LIMIT, but
  the request is refused for it only when every quota-mode descriptor of the request is over;
- the global shadow mode answers OK overall whatever the statuses say (and says it did);
- with `stop_when_over` a request that would be over any limit is counted by none (one look first);
- `duration_until_reset` in whole seconds; each descriptor's hits split into envoyproxy/ratelimit's
  stats (ratelimit_accounting.py).

Every counted limit of one request goes to the domain's handler in ONE `handle_rate_limits` call,
bounded by the caller's deadline. The routing table binds each domain to its handler, so a config
change swaps domains and handlers together, and a request counts itself in the table's `inflight`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..adapter import HANDLE_RATE_LIMITS, Code, Duration, RateLimit, RateLimitCall, RateLimitResult
from ..config.ratelimit_model import (
    MAX_REQUESTS_PER_UNIT,
    UNIT_NAMES,
    UNIT_NS,
    CurrentLimit,
    LimitPolicy,
    RateLimitDomain,
)
from .calls import adapter_deadline
from .handlers import BuiltHandler
from .ratelimit_accounting import NO_HITS, Hits, account, whole_seconds
from .ratelimit_match import Match, match, override_stat

if TYPE_CHECKING:
    from .table import TableSource  # table.py imports this module

__all__ = ["Match", "match"]

#: envoy.service.ratelimit.v3.RateLimitResponse.Code
OK, OVER_LIMIT = 1, 2
#: A descriptor's stats key when its own would put one more request value into the stats past their cap.
OTHER_STAT = "(other)"


class RateLimitFailed(Exception):
    """The domain's handler could not answer (unavailable, raised, or missed the deadline); the message
    is safe to send to the caller."""


@dataclass(frozen=True, slots=True)
class RateLimitOptions:
    """envoyproxy/ratelimit's server-wide behaviours (the `ratelimit_*` settings)."""

    near_limit_ratio: float = 0.8  # NEAR_LIMIT_RATIO
    shadow_mode: bool = False  # SHADOW_MODE
    quota_mode: bool = False  # QUOTA_MODE
    stop_when_over: bool = False  # STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT

    @classmethod
    def of(cls, settings: Any) -> RateLimitOptions:
        return cls(
            settings.ratelimit_near_limit_ratio,
            settings.ratelimit_shadow_mode,
            settings.ratelimit_quota_mode,
            settings.ratelimit_stop_cache_key_increment_when_overlimit,
        )


@dataclass(frozen=True, slots=True)
class DescriptorRequest:
    """One request descriptor: its entries, its hits, and Envoy's limit override if it sent one."""

    entries: tuple[tuple[str, str], ...]
    hits: int = 1
    override: CurrentLimit | None = None


@dataclass(slots=True)  # read-only by convention: frozen dataclasses are slower to make, one per descriptor
class DescriptorVerdict:
    """One DescriptorStatus, plus what stats, headers and metadata need."""

    code: int = OK
    current: CurrentLimit | None = None
    remaining: int = 0
    reset: int = 0  # ns until the limit resets, whole seconds
    stat: str = ""  # envoyproxy/ratelimit's stats key, without the domain ("" for no limit)
    rollup: str = ""  # `stat` with no request value in it
    hits: Hits = NO_HITS
    unlimited: bool = False
    quota_mode: bool = False
    metadata: Mapping[str, Any] | None = None  # the matched descriptor's, for dynamic metadata


@dataclass(slots=True)  # read-only by convention (made once per request)
class Decision:
    code: int
    statuses: tuple[DescriptorVerdict, ...]
    known: bool = True  # False: no config has the domain
    backend_errors: int = 0  # limits the backend answered by its fail policy
    global_shadow: bool = False  # the global shadow mode turned an OVER_LIMIT answer into OK
    limiting: int = -1  # the status rate limit response headers describe (-1: none has a limit)


_NO_LIMIT = DescriptorVerdict()
_UNLIMITED = DescriptorVerdict(remaining=MAX_REQUESTS_PER_UNIT, unlimited=True)


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


@dataclass(slots=True)
class _Planned:
    """One descriptor's limits left after `replaces`, and where their answers come from."""

    policies: list[LimitPolicy]
    counter: tuple[tuple[str, str], ...]
    hits: int
    shadow: bool
    quota: bool
    stat: str
    rollup: str
    metadata: Mapping[str, Any] | None = None
    calls: list[int] = dataclasses.field(default_factory=list)  # into the request's calls; -1: blocks


class RateLimiter:
    """Decides ShouldRateLimit requests against the routing table in force."""

    def __init__(
        self,
        source: TableSource | None,
        clock: Callable[[], int],
        adapter_timeout: float = 5.0,
        options: RateLimitOptions | None = None,
    ) -> None:
        self._source = source
        self._clock = clock
        self._timeout = adapter_timeout
        self.options = options or RateLimitOptions()

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
        plans = [self._plan(route, d) for d in descriptors]
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
                calls.append(RateLimitCall(route.domain.domain, plan.counter, policy.limit, plan.hits))
        if not calls:
            results: list[RateLimitResult] = []
        elif self.options.stop_when_over:
            results = await self._count_unless_over(route, calls, timeout, plans)
        else:
            results = await self._call(route, calls, timeout)
        now = self._clock()
        statuses = tuple(self._verdict(p, results, now) if p is not None else _NO_LIMIT for p in plans)
        errors = sum(1 for r in results if r.status != Code.OK)
        code, shadowed, limiting = self._overall(statuses)
        return Decision(code, statuses, True, errors, shadowed, limiting)

    def _plan(self, route: RateLimitRoute, d: DescriptorRequest) -> _Planned | None:
        if d.override is not None:
            stat = override_stat(d.entries)
            return _Planned([_override_policy(d.override)], d.entries, d.hits, False, False, stat, OTHER_STAT)
        found = match(route.domain.descriptors, d.entries)
        if found is None or not found.node.limits:
            return None
        node = found.node
        return _Planned(
            list(node.limits),
            found.counter,
            d.hits,
            node.shadow_mode,
            node.quota_mode,
            found.stat,
            found.rollup,
            node.metadata,
        )

    def _overall(self, statuses: Sequence[DescriptorVerdict]) -> tuple[int, bool, int]:
        """The overall code, whether the global shadow mode made it OK, and the status response headers
        describe, as envoyproxy/ratelimit's service decides them.

        OVER_LIMIT when a descriptor not in quota mode is over, or every one in quota mode is; then OK
        again in global shadow mode. Unlimited descriptors do not take part; with the global quota mode,
        every other one is in quota mode (those with no limit too). The headers describe the last status
        over (not in quota mode), else the first with the least remaining among those with a limit.
        """
        over = quota = quota_over = 0
        limiting, least = -1, MAX_REQUESTS_PER_UNIT
        for i, status in enumerate(statuses):
            if status.current is not None and status.remaining < least:
                limiting, least = i, status.remaining
            if status.unlimited:
                continue
            in_quota = self.options.quota_mode or status.quota_mode
            quota += in_quota
            if status.code == OVER_LIMIT:
                if in_quota:
                    quota_over += 1
                else:
                    over += 1
                    limiting, least = i, 0
        code = OVER_LIMIT if over or (quota and quota == quota_over) else OK
        if code == OVER_LIMIT and self.options.shadow_mode:
            return OK, True, limiting
        return code, False, limiting

    async def _count_unless_over(
        self,
        route: RateLimitRoute,
        calls: list[RateLimitCall],
        timeout: float | None,
        plans: list[_Planned | None],
    ) -> list[RateLimitResult]:
        # a limit of 0 that the request's hits are over (it never reaches the backend) stops it too
        blocked = any(p is not None and p.hits > 0 and any(x.blocks for x in p.policies) for p in plans)
        # envoyproxy/ratelimit's STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT: look first (hits 0 counts
        # nothing), and count only when no limit would be over (shadow and quota mode ones included).
        looks = await self._call(route, [dataclasses.replace(c, hits=0) for c in calls], timeout)
        stopped = [
            r if r.status != Code.OK else RateLimitResult(c.hits <= r.remaining, r.remaining, r.reset)
            for c, r in zip(calls, looks, strict=True)
        ]
        if not blocked and all(r.allowed for r in stopped):
            return await self._call(route, calls, timeout)
        return stopped

    async def _call(
        self, route: RateLimitRoute, calls: list[RateLimitCall], timeout: float | None
    ) -> list[RateLimitResult]:
        handler = route.handler
        if route.method is None:
            why = handler.failure or f"{type(handler.handler).__name__} has no method {HANDLE_RATE_LIMITS}"
            raise RateLimitFailed(f"handler {handler.fqn} is unavailable: {why}")
        method, is_async = route.method
        deadline = adapter_deadline(self._timeout, timeout)
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

    def _verdict(self, plan: _Planned, results: list[RateLimitResult], now: int) -> DescriptorVerdict:
        """One descriptor's status: the first limit over (in config order), else the one with the least
        left; its stats from that limit's counts."""
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
        assert chosen is not None and chosen[0].limit is not None
        policy, result = chosen
        limit = policy.limit.max_amount
        if result.status != Code.OK:  # answered by the fail policy: nothing known of the counter
            hits = Hits(plan.hits)
        else:
            used = limit - result.remaining
            before = used if not result.allowed else used - plan.hits
            hits = account(limit, before, plan.hits, self.options.near_limit_ratio, plan.shadow)
        return DescriptorVerdict(
            OVER_LIMIT if over and not plan.shadow else OK,
            policy.current,
            min(max(result.remaining, 0), MAX_REQUESTS_PER_UNIT),
            whole_seconds(int(result.reset)),
            plan.stat,
            plan.rollup,
            hits,
            False,
            plan.quota,
            plan.metadata,
        )


def _override_policy(override: CurrentLimit) -> LimitPolicy:
    window = UNIT_NS[UNIT_NAMES[override.unit]]
    return LimitPolicy(override, RateLimit(override.requests_per_unit, Duration(window)))


def _apply_replaces(plans: list[_Planned | None]) -> None:
    """Drop every named limit that another matched limit of the request replaces (an unlimited one
    stays: envoyproxy/ratelimit sets unlimited descriptors apart before it applies `replaces`)."""
    replaced = {n for plan in plans if plan is not None for p in plan.policies for n in p.replaces}
    if not replaced:
        return
    for plan in plans:
        if plan is not None:
            plan.policies = [p for p in plan.policies if p.unlimited or not (p.name and p.name in replaced)]


def _blocked(policy: LimitPolicy, hits: int, now: int) -> RateLimitResult:
    """`requests_per_unit: 0`: over for any hit, until the current (epoch-aligned) window ends."""
    window = policy.limit.window if policy.limit is not None else 1
    return RateLimitResult(hits == 0, 0, Duration(window - now % window))
