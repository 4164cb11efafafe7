"""A rolling window of 100 ms ticks: what was granted in the last `ticks` ticks."""

from __future__ import annotations

import math
from collections import deque

TICK_NS = 100_000_000  # 10 ticks per second
_SECOND = 1_000_000_000


def window_ticks(valid_duration_ns: int) -> int:
    """Ticks in a window: 10 per second over ceil(valid_duration) seconds (MIXER.md 7.8)."""
    return math.ceil(valid_duration_ns / _SECOND) * (_SECOND // TICK_NS)


class RollingWindow:
    """Amounts recorded in the tick of "now"; each leaves the window `ticks` ticks after its own.

    Only ticks that had grants take memory: (tick, amount) pairs, oldest first, and the running total.
    So a bucket costs memory for what it granted in the last window, not for the window's length (a
    ring of one slot per tick made every bucket of a one-hour quota 288 KB, however idle, and callers
    choose how many buckets there are). A call costs O(pairs that left the window since the last one).
    """

    __slots__ = ("_pairs", "_tick", "_ticks", "_total")

    def __init__(self, ticks: int, now_tick: int) -> None:
        self._ticks = ticks
        self._pairs: deque[list[int]] = deque()  # [tick, amount granted in it]
        self._tick = now_tick  # the newest tick seen
        self._total = 0

    def used(self, tick: int) -> int:
        """The amount granted in the window that ends at `tick` (inclusive)."""
        self._advance(tick)
        return self._total

    def add(self, tick: int, amount: int) -> None:
        self._advance(tick)
        pairs = self._pairs
        if pairs and pairs[-1][0] == self._tick:
            pairs[-1][1] += amount
        else:
            pairs.append([self._tick, amount])
        self._total += amount

    def peek(self, tick: int) -> int:
        """What `used(tick)` answers, changing nothing (so another thread may ask, e.g. the admin page)."""
        oldest_kept = max(tick, self._tick) - self._ticks + 1
        return sum(amount for at, amount in tuple(self._pairs) if at >= oldest_kept)

    def idle(self, tick: int) -> bool:
        """Nothing granted is in the window at `tick`: a new window would answer the same."""
        self._advance(tick)
        return not self._pairs

    def _advance(self, tick: int) -> None:
        if tick > self._tick:  # a clock that stepped back counts in the newest tick
            self._tick = tick
        pairs = self._pairs
        oldest_kept = self._tick - self._ticks + 1
        while pairs and pairs[0][0] < oldest_kept:
            self._total -= pairs.popleft()[1]
