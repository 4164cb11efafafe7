"""The strikes handler: report counts strikes per offender, check boxes an offender with too many.

Everything is in memory and takes microseconds, so both methods are plain `def`s: they run on the
event loop, and neither may ever block it.
"""

from __future__ import annotations

from collections import deque

from mixerd.adapter import (
    CheckResult,
    Duration,
    Env,
    ListEntryHandler,
    ListEntryInstance,
    MetricHandler,
    MetricInstance,
    SupportsClose,
)

from .params import Params


# The Protocols of the methods it implements: a type checker holds each method to its signature.
class StrikesHandler(ListEntryHandler, MetricHandler, SupportsClose):
    def __init__(self, env: Env) -> None:
        params: Params = env.params
        self._params = params
        self._clock = env.clock  # the injected clock: tests decide what time it is
        self._log = env.logger
        self._handler = env.handler
        self._exempt = frozenset(params.exempt)
        self._allow = CheckResult(valid_duration=params.valid_duration)
        self._strikes: dict[str, deque[int]] = {}  # offender -> strike times (clock ns), oldest first
        self._closed = False

    def handle_metric(self, instances: list[MetricInstance]) -> None:
        """Report: each instance is one strike against the offender in its `dimension`."""
        now = self._clock()
        for instance in instances:
            offender = instance.dimensions.get(self._params.dimension)
            if not offender or offender in self._exempt or self._closed:
                continue
            times = self._recent(offender, now)
            if not times:
                times = self._strikes[offender] = deque()
            times.append(now)
            if len(times) == self._params.max_strikes:
                self._log.info("%s: %s is boxed after %d strikes", self._handler, offender, len(times))

    def handle_listentry(self, instance: ListEntryInstance) -> CheckResult:
        """Check: deny the offender in `value` while it has max_strikes strikes within the window."""
        offender = instance.value
        if not offender:
            return self._allow
        now = self._clock()
        times = self._recent(offender, now)
        if len(times) < self._params.max_strikes:
            return self._allow
        # The box opens when enough strikes have left the window; the proxy may cache the denial until then.
        opens_at = times[-self._params.max_strikes] + self._params.window
        return CheckResult(
            status=self._params.status,
            message=f"{offender} has {len(times)} strikes in the last {self._params.window}",
            valid_duration=Duration(opens_at - now),
        )

    def strikes(self, offender: str) -> int:
        """How many strikes `offender` has in the window now."""
        return len(self._recent(offender, self._clock()))

    def forget_old(self) -> None:
        """Drop every strike that has left the window (runs in the background, see build)."""
        now = self._clock()
        for offender in list(self._strikes):
            self._recent(offender, now)

    def close(self) -> None:
        """Nothing to flush or disconnect; idempotent like every close must be."""
        self._closed = True
        self._strikes.clear()

    def _recent(self, offender: str, now: int) -> deque[int]:
        """`offender`'s strikes within the window, oldest first; older ones are dropped on the way."""
        times = self._strikes.get(offender)
        if times is None:
            return deque()
        cutoff = now - self._params.window
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            del self._strikes[offender]
        return times
