"""A rolling window of 100 ms ticks: what was granted in the last `ticks` ticks, in O(ticks) memory."""

from __future__ import annotations

import math

TICK_NS = 100_000_000  # 10 ticks per second
_SECOND = 1_000_000_000


def window_ticks(valid_duration_ns: int) -> int:
    """Ticks in a window: 10 per second over ceil(valid_duration) seconds (MIXER.md 7.8)."""
    return math.ceil(valid_duration_ns / _SECOND) * (_SECOND // TICK_NS)


class RollingWindow:
    """Amounts recorded in the tick of "now"; each leaves the window `ticks` ticks after its own.

    A ring of one slot per tick (slot = tick % ticks) plus the running total, so a call costs
    O(ticks elapsed since the last call), at most O(ticks).
    """

    __slots__ = ("_slots", "_tick", "_total")

    def __init__(self, ticks: int, now_tick: int) -> None:
        self._slots = [0] * ticks
        self._tick = now_tick  # the newest tick the ring has been moved to
        self._total = 0

    def used(self, tick: int) -> int:
        """The amount granted in the window that ends at `tick` (inclusive)."""
        self._advance(tick)
        return self._total

    def add(self, tick: int, amount: int) -> None:
        self._advance(tick)
        self._slots[self._tick % len(self._slots)] += amount
        self._total += amount

    def _advance(self, tick: int) -> None:
        gap = tick - self._tick
        if gap <= 0:  # the same tick, or a clock that stepped back: count in the newest tick
            return
        size = len(self._slots)
        if gap >= size:
            self._slots = [0] * size
            self._total = 0
        else:
            slots = self._slots
            for t in range(self._tick + 1, tick + 1):  # each of these slots held the tick `size` before
                i = t % size
                self._total -= slots[i]
                slots[i] = 0
        self._tick = tick
