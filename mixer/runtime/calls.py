"""What every dispatch step shares: evaluating a rule's match, counting handler calls, waiting on async
answers within a deadline, and telling a trace about each."""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_left
from collections.abc import Awaitable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from ..attribute import AttributeBag
from ..lang import EvaluationError
from .stats import RuntimeStats
from .trace import ERRORED, FAILED, HELD, Trace

if TYPE_CHECKING:
    from .table import Destination, Match

#: One logger for every step of the dispatch (its name from when they were one module).
log = logging.getLogger("mixerd.runtime.dispatcher")

#: How long to wait on async adapters when the caller set no deadline.
DEFAULT_ADAPTER_TIMEOUT = 5.0

#: An async handler call being awaited: its destination, its answer to come, and for a trace the rule and
#: instances behind it.
Pending = tuple["Destination", Awaitable[Any], str, tuple[str, ...]]


def adapter_deadline(adapter_timeout: float, timeout: float | None) -> float:
    """How long to wait on adapters: `adapter_timeout`, within 80% of the caller's `timeout` (seconds)."""
    # Leave part of the caller's deadline for the answer itself, so a hung adapter gives INTERNAL rather
    # than the caller's DEADLINE_EXCEEDED.
    if timeout is None:
        return adapter_timeout
    return max(0.001, min(adapter_timeout, timeout * 0.8))


class Calls:
    """The runtime's counters and adapter timeout, with what every step does with them."""

    __slots__ = ("_errors", "_matches", "_seconds", "stats", "timeout")

    def __init__(self, stats: RuntimeStats, adapter_timeout: float = DEFAULT_ADAPTER_TIMEOUT) -> None:
        self.stats = stats
        self.timeout = adapter_timeout
        self._matches = stats.rule_matches
        self._errors = stats.rule_errors
        self._seconds = stats.handler_seconds

    def deadline(self, timeout: float | None) -> float:
        return adapter_deadline(self.timeout, timeout)

    def holds(
        self,
        match: Match,
        rule: str,
        bag: AttributeBag,
        step: str,
        trace: Trace | None,
        counted: bool = True,
    ) -> bool:
        """Whether `rule`'s match holds for `bag`; one that cannot be evaluated counts as false (Mixer,
        MIXER.md 4.1), and is counted. `counted`: whether the rule's own counters count this one."""
        if match is None:
            if counted:
                self._matches[rule] += 1
            if trace is not None:
                trace.matched(step, rule, HELD)
            return True
        try:
            held = match(bag) is True
        except Exception as e:
            self.stats.match_errors += 1
            if counted:
                self._errors[rule] += 1
            level = logging.DEBUG if isinstance(e, EvaluationError) else logging.WARNING
            log.log(level, "rule %s: match failed, counted as false: %s", rule, e)
            if trace is not None:
                trace.matched(step, rule, ERRORED, str(e))
            return False
        if held and counted:
            self._matches[rule] += 1
        if trace is not None:
            trace.matched(step, rule, HELD if held else FAILED)
        return held

    def count(self, dest: Destination, outcome: str, started: float | None = None) -> None:
        """Count a call of `dest` by its outcome and, given when it `started` (perf_counter), time it."""
        self.stats.dispatches[(*dest.key, outcome)] += 1
        if started is not None:
            # Histogram.observe inlined: this runs for every handler call.
            took = perf_counter() - started
            histogram = self._seconds.by_labels.get(dest.key) or self._seconds.of(dest.key)
            histogram.counts[bisect_left(histogram.bounds, took)] += 1
            histogram.sum += took

    def timed(self, dest: Destination, started: float) -> None:
        """Record how long a call of `dest` took, since `started` (perf_counter)."""
        self._seconds.of(dest.key).observe(perf_counter() - started)

    async def gather(
        self,
        pending: list[Pending],
        deadline: float,
        answers: list[tuple[str, Any]],
        errors: list[str],
        step: str,
        trace: Trace | None,
    ) -> None:
        """Await `pending` together for at most `deadline` seconds: each answer goes to `answers` as
        (handler FQN, answer), each failure to `errors`; late calls are cancelled. Each call's time to
        answer (the deadline for a late one) is recorded."""
        started = perf_counter()
        tasks = [asyncio.ensure_future(answer) for _, answer, _, _ in pending]
        finished: dict[asyncio.Future[Any], float] = {}
        for task in tasks:
            task.add_done_callback(lambda done: finished.setdefault(done, perf_counter()))
        _done, late = await asyncio.wait(tasks, timeout=deadline)
        for task in late:
            task.cancel()
        seconds = self._seconds
        for (dest, _, rule, instances), task in zip(pending, tasks, strict=True):
            handler = dest.handler.fqn
            took = deadline if task in late else finished.get(task, perf_counter()) - started
            seconds.of(dest.key).observe(took)
            if task in late:
                error = f"no answer within {deadline:.3g}s"
            elif (e := task.exception()) is not None:
                error = f"{type(e).__name__}: {e}"
            else:
                self.count(dest, "ok")
                answers.append((handler, task.result()))
                if trace is not None:
                    trace.called(step, dest, rule, instances, task.result())
                continue
            self.count(dest, "error")
            errors.append(f"{handler}: {error}")
            if trace is not None:
                trace.called(step, dest, rule, instances, error=error)
