"""The memquota handler: rate-limit and allocation quotas counted in this process's memory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mixerd.adapter import (
    Dimensions,
    Duration,
    Env,
    QuotaArgs,
    QuotaInstance,
    QuotaResult,
    RateLimitCall,
    RateLimitResult,
    dimension_texts,
    matching_override,
)

from .params import Params, Quota
from .ratelimit import RateLimitCounters
from .window import TICK_NS, RollingWindow, window_ticks

BucketKey = tuple[str, Dimensions]  # (instance name, sorted (dimension, text) pairs)
_MIN_SWEEP = 1024


class UnknownQuota(LookupError):
    """An instance with no quota config reached the handler (validation should have caught it)."""


class _Bucket:
    """One (instance, dimensions) counter and its limit, which is fixed when the bucket is made."""

    __slots__ = ("max_amount", "used", "valid_duration", "window")

    def __init__(self, max_amount: int, valid_duration: int, now: int) -> None:
        self.max_amount = max_amount
        self.valid_duration = Duration(valid_duration)
        self.window = (
            RollingWindow(window_ticks(valid_duration), now // TICK_NS) if valid_duration > 0 else None
        )
        self.used = 0  # allocation quotas only

    def idle(self, now: int) -> bool:
        """Holding nothing: a bucket made anew would answer the same, so this one can go."""
        return self.used == 0 if self.window is None else self.window.idle(now // TICK_NS)


@dataclass(frozen=True, slots=True)
class _Grant:
    granted: int
    valid_duration: int
    at: int  # clock ns when it was granted

    def result(self, now: int) -> QuotaResult:
        """The earlier result, with the part of its valid duration that is left."""
        left = max(0, self.valid_duration - (now - self.at)) if self.valid_duration > 0 else 0
        return QuotaResult(granted_amount=self.granted, valid_duration=Duration(left))


class MemQuota:
    """One handler: buckets by instance and dimensions, and the dedup ids of recent requests."""

    def __init__(self, params: Params, env: Env) -> None:
        self._quotas: dict[str, Quota] = {q.name: q for q in params.quotas}
        self._clock = env.clock
        # One bucket per instance and dimension values, which callers choose (an IP, a header): idle ones
        # are dropped whenever the map has doubled since the last sweep, so memory follows live buckets.
        self._buckets: dict[BucketKey, _Bucket] = {}
        self._sweep_at = _MIN_SWEEP
        # Dedup ids in two generations: an id is remembered for one to two periods.
        self._dedup_period = max(1, int(params.min_deduplication_duration))  # > 0 once validated
        self._recent: dict[str, _Grant] = {}
        self._old: dict[str, _Grant] = {}
        self._swapped_at = env.clock()
        self._rate_limits = RateLimitCounters(env.clock)

    def handle_quota(self, instance: QuotaInstance, args: QuotaArgs) -> QuotaResult:
        quota = self._quotas.get(instance.name)
        if quota is None:
            raise UnknownQuota(f"no quota is configured for instance {instance.name!r}")
        now = self._clock()
        if args.dedup_id:
            self._rotate(now)
            earlier = self._recent.get(args.dedup_id) or self._old.get(args.dedup_id)
            if earlier is not None:
                return earlier.result(now)
        dims = dimension_texts(instance.dimensions)
        key: BucketKey = (instance.name, dims)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._sweep_at:
                self._sweep(now)
            bucket = self._buckets[key] = _Bucket(*_limit(quota, dims), now)
        granted = _take(bucket, args, now)
        if args.dedup_id:
            self._recent[args.dedup_id] = _Grant(granted, bucket.valid_duration, now)
        return QuotaResult(granted_amount=granted, valid_duration=bucket.valid_duration)

    def handle_rate_limits(self, calls: Sequence[RateLimitCall]) -> list[RateLimitResult]:
        """Envoy's rate limits (a ratelimitconfig naming this handler), counted in memory."""
        return self._rate_limits.handle(calls)

    def top_counters(self, limit: int = 10) -> dict[str, Any]:
        """The `limit` busiest counters (most used now) of quotas and of Envoy's rate limits, and how
        many there are; read-only, for the admin page (which asks from its own thread)."""
        tick = self._clock() // TICK_NS
        quotas = []
        for (name, dims), bucket in list(self._buckets.items()):
            used = bucket.used if bucket.window is None else bucket.window.peek(tick)
            if used > 0:
                quotas.append((used, name, dims, bucket))
        rows = [
            {
                "instance": name,
                "dimensions": dict(dims),
                "used": used,
                "max_amount": bucket.max_amount,
                "valid_duration": str(bucket.valid_duration) if bucket.window is not None else "",
            }
            for used, name, dims, bucket in sorted(quotas, key=lambda row: -row[0])[:limit]
        ]
        rate_limits = [
            {
                "domain": key[0],
                "entries": [list(entry) for entry in key[1]],
                "used": hits,
                "window": str(Duration(key[2])),
            }
            for key, hits in self._rate_limits.busiest(limit)
        ]
        return {
            "quota_counters": len(self._buckets),
            "quota": rows,
            "rate_limit_counters": len(self._rate_limits),
            "rate_limit": rate_limits,
        }

    def close(self) -> None:
        self._rate_limits.clear()
        self._buckets.clear()
        self._recent.clear()
        self._old.clear()

    def _sweep(self, now: int) -> None:
        self._buckets = {key: b for key, b in self._buckets.items() if not b.idle(now)}
        self._sweep_at = max(_MIN_SWEEP, 2 * len(self._buckets))

    def _rotate(self, now: int) -> None:
        """Swap the generations for every whole period since the last swap (done here, so no timer)."""
        periods = (now - self._swapped_at) // self._dedup_period
        if periods <= 0:
            return
        self._old = self._recent if periods == 1 else {}
        self._recent = {}
        self._swapped_at += periods * self._dedup_period


def _take(bucket: _Bucket, args: QuotaArgs, now: int) -> int:
    """Grant what the bucket allows of `args.amount` and record it."""
    amount = args.amount
    if bucket.window is None:  # allocation: a counter with no expiry; a negative amount gives back
        if amount < 0:
            released = min(-amount, bucket.used)
            bucket.used -= released
            return -released
        granted = _fit(amount, bucket.max_amount - bucket.used, args.best_effort)
        bucket.used += granted
        return granted
    if amount < 0:  # a rate limit cannot be given back
        return 0
    tick = now // TICK_NS
    granted = _fit(amount, bucket.max_amount - bucket.window.used(tick), args.best_effort)
    if granted:
        bucket.window.add(tick, granted)
    return granted


def _fit(amount: int, available: int, best_effort: bool) -> int:
    if amount <= available:
        return amount
    return max(available, 0) if best_effort else 0


def _limit(quota: Quota, dims: Dimensions) -> tuple[int, int]:
    """(max_amount, valid_duration) from the first override whose dimensions all match, else the quota's."""
    override = matching_override(quota.overrides, dims)
    if override is not None:
        return override.max_amount, override.valid_duration
    return quota.max_amount, quota.valid_duration
