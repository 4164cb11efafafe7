"""memquota's counters for Envoy's rate limit service (`handle_rate_limits`), in this process's memory.

Each counter is named by the call's domain, entries and the limit's window, algorithm and bucket
duration, and counts exactly as redisquota's Lua script does, so both adapters answer a sequence of
calls on one clock identically (tests/unit/envoy/test_ratelimit_backends.py):

- FIXED_WINDOW: windows aligned to the Unix epoch; a counter holds its window's number and the hits in it.
- ROLLING_WINDOW: buckets of `bucket_duration` aligned to the epoch, the window being the last
  ceil(window / bucket) of them; a counter holds (bucket, hits) pairs, oldest first, and their total.

All or nothing: hits that fit are counted, others are not. Counters whose window has passed are
dropped whenever the map has doubled since the last sweep, so memory follows the live counters.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence

from mixerd.adapter import Duration, RateLimit, RateLimitAlgorithm, RateLimitCall, RateLimitResult

CounterKey = tuple[str, tuple[tuple[str, str], ...], int, int, int]
_MIN_SWEEP = 1024


class _Fixed:
    __slots__ = ("used", "window")

    def __init__(self, window: int) -> None:
        self.window = window  # the window's number: start / window length
        self.used = 0


class _Rolling:
    __slots__ = ("buckets", "newest", "used")

    def __init__(self) -> None:
        self.buckets: deque[list[int]] = deque()  # [bucket number, hits], oldest first
        self.newest = -1
        self.used = 0


class RateLimitCounters:
    """Every rate limit counter of one handler."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self._clock = clock
        self._counters: dict[CounterKey, _Fixed | _Rolling] = {}
        self._sweep_at = _MIN_SWEEP

    def handle(self, calls: Sequence[RateLimitCall]) -> list[RateLimitResult]:
        now = self._clock()
        out = []
        for call in calls:
            limit = call.limit
            key = (call.domain, call.entries, limit.window, limit.algorithm, limit.bucket_duration)
            if limit.algorithm == RateLimitAlgorithm.ROLLING_WINDOW:
                out.append(self._rolling(key, limit, call.hits, now))
            else:
                out.append(self._fixed(key, limit, call.hits, now))
        if len(self._counters) >= self._sweep_at:
            self._sweep(now)
        return out

    def clear(self) -> None:
        self._counters.clear()

    def __len__(self) -> int:
        return len(self._counters)

    def busiest(self, limit: int) -> list[tuple[CounterKey, int]]:
        """The `limit` counters with the most hits in their window now, changing nothing (the admin
        page asks from its own thread)."""
        now = self._clock()
        used = []
        for key, counter in list(self._counters.items()):
            window, bucket_size = key[2], key[4]
            if isinstance(counter, _Fixed):
                hits = counter.used if counter.window == now // window else 0
            else:
                oldest = max(now // bucket_size, counter.newest) - math.ceil(window / bucket_size) + 1
                hits = sum(n for bucket, n in tuple(counter.buckets) if bucket >= oldest)
            if hits > 0:
                used.append((key, hits))
        return sorted(used, key=lambda pair: -pair[1])[:limit]

    def _fixed(self, key: CounterKey, limit: RateLimit, hits: int, now: int) -> RateLimitResult:
        number = now // limit.window
        counter = self._counters.get(key)
        if not isinstance(counter, _Fixed) or counter.window != number:
            counter = self._counters[key] = _Fixed(number)
        allowed = counter.used + hits <= limit.max_amount
        if allowed:
            counter.used += hits
        return RateLimitResult(
            allowed, limit.max_amount - counter.used, Duration((number + 1) * limit.window - now)
        )

    def _rolling(self, key: CounterKey, limit: RateLimit, hits: int, now: int) -> RateLimitResult:
        size = int(limit.bucket_duration)
        span = math.ceil(limit.window / size)  # buckets per window
        counter = self._counters.get(key)
        if not isinstance(counter, _Rolling):
            counter = self._counters[key] = _Rolling()
        bucket = max(now // size, counter.newest)  # a clock that stepped back counts in the newest bucket
        counter.newest = bucket
        buckets = counter.buckets
        while buckets and buckets[0][0] <= bucket - span:  # left the window: its hits are free again
            counter.used -= buckets.popleft()[1]
        if not buckets:
            counter.used = 0
        allowed = counter.used + hits <= limit.max_amount
        if allowed and hits > 0:
            if buckets and buckets[-1][0] == bucket:
                buckets[-1][1] += hits
            else:
                buckets.append([bucket, hits])
            counter.used += hits
        reset = max(0, (buckets[0][0] + span) * size - now) if buckets else 0
        return RateLimitResult(allowed, limit.max_amount - counter.used, Duration(reset))

    def _sweep(self, now: int) -> None:
        """Drop the counters whose window has passed (they would start from 0 anyway)."""
        live: dict[CounterKey, _Fixed | _Rolling] = {}
        for key, counter in self._counters.items():
            window, bucket_size = key[2], key[4]
            if isinstance(counter, _Fixed):
                if counter.window == now // window:
                    live[key] = counter
            elif counter.buckets and counter.buckets[-1][0] > now // bucket_size - math.ceil(
                window / bucket_size
            ):
                live[key] = counter
        self._counters = live
        self._sweep_at = max(_MIN_SWEEP, 2 * len(live))
