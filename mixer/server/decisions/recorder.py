"""The front-ends' seam: whether a request is recorded, and its Decision once decided.

`DecisionLog.begin()` runs first on every Check, ext_authz Check and ShouldRateLimit. It answers None,
and the request goes on exactly as before (no trace, no clock read), unless the decision log is on and
the sample picks this request, or the `mixerd.decisions` logger is at debug. Otherwise it answers a
`Note`: the start time and a Trace for the dispatcher, and the methods that finish the record, hand it
to the writer (when sampled) and log the debug line (when asked).
"""

from __future__ import annotations

import inspect
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...dispatch import CheckOutcome, Dispatcher, DispatchError, QuotaRequest
from ...runtime.trace import Trace
from ..frontend import Rejection, check_failed
from .record import EXT_AUTHZ, Decision, code_name
from .render import Redaction, summary
from .writer import DecisionWriter

if TYPE_CHECKING:
    from ...attribute import AttributeBag
    from ...runtime.ratelimit import Decision as RateLimitDecision
    from ...runtime.ratelimit import DescriptorRequest

#: The debug line per decision goes to this logger.
LOGGER = "mixerd.decisions"
_log = logging.getLogger(LOGGER)
_DEBUG = logging.DEBUG


def traces(dispatcher: Dispatcher) -> bool:
    """Whether `dispatcher.check` takes a `trace` (the rule engine's does; a stand-in may not)."""
    try:
        return "trace" in inspect.signature(dispatcher.check).parameters
    except (TypeError, ValueError):
        return False


class DecisionLog:
    """Decides per request whether it is recorded, and where records go (see the module docstring)."""

    def __init__(
        self,
        writer: DecisionWriter | None = None,
        sample: float = 1.0,
        redaction: Redaction | None = None,
        *,
        can_trace: bool = True,
        rate_limit_handler: Callable[[str], str] = lambda domain: "",
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.writer = writer
        self._sample = sample
        self.redaction = redaction or Redaction(())
        self.can_trace = can_trace
        self.rate_limit_handler = rate_limit_handler
        self._rand = rand

    def begin(self, api: str) -> Note | None:
        """A Note when this request's decision is written or logged at debug; None otherwise."""
        write = self.writer is not None and (self._sample >= 1.0 or self._rand() < self._sample)
        if not write and not _log.isEnabledFor(_DEBUG):
            return None
        return Note(self, api, write)

    def finish(self, note: Note, decision: Decision) -> None:
        if decision.request_id is None:  # one the debug line and the record share
            decision.request_id = uuid.uuid4().hex
        if note.write and self.writer is not None:
            self.writer.offer(decision)
        if _log.isEnabledFor(_DEBUG):
            _log.debug("%s", summary(decision, self.redaction))


#: The log of a server with decision logs off (debug lines only).
OFF = DecisionLog()


class Note:
    """One request being recorded: its start, its trace, and how it ends."""

    __slots__ = ("_log", "api", "started", "started_wall", "trace", "write")

    def __init__(self, log: DecisionLog, api: str, write: bool) -> None:
        self._log = log
        self.api = api
        self.write = write
        self.trace = Trace() if log.can_trace else None
        self.started_wall = time.time_ns()
        self.started = time.perf_counter_ns()

    def _decision(self, code: str, message: str, request_id: str | None = None) -> Decision:
        elapsed = time.perf_counter_ns() - self.started
        return Decision(self.api, self.started_wall, elapsed, code, message, request_id, self.trace)

    async def check(
        self,
        dispatcher: Dispatcher,
        bag: AttributeBag,
        quotas: Mapping[str, QuotaRequest],
        dedup_id: str,
        timeout: float | None,
    ) -> CheckOutcome:
        """`dispatcher.check` with this note's trace; the decision (or the failure) is recorded."""
        try:
            if self.trace is None:
                outcome = await dispatcher.check(bag, quotas, dedup_id, timeout)
            else:
                outcome = await dispatcher.check(bag, quotas, dedup_id, timeout, trace=self.trace)  # type: ignore[call-arg]
        except DispatchError as e:
            rejection = check_failed(e)
            self._checked(bag, rejection.code.name, rejection.message, quotas if quotas else None, None)
            raise
        refs = outcome.references
        self._checked(
            bag,
            code_name(outcome.status_code),
            outcome.message,
            quotas if quotas else None,
            outcome,
            bag.reference_items() if refs is None else refs,
        )
        return outcome

    def _checked(
        self,
        bag: AttributeBag,
        code: str,
        message: str,
        quotas: Mapping[str, QuotaRequest] | None,
        outcome: CheckOutcome | None,
        references: Any = None,
    ) -> None:
        decision = self._decision(code, message, _request_id(bag))
        decision.attributes = bag
        decision.references = bag.reference_items() if references is None else references
        if self.api != EXT_AUTHZ:
            decision.quotas_asked = quotas or {}
            decision.quotas = outcome.quotas if outcome is not None else None
        else:
            decision.cached = False
        self._log.finish(self, decision)

    def cached(self, request_id: str | None, body: bytes, trace: Trace | None = None) -> None:
        """An ext_authz answer from the verdict cache (its status is read from `body` when written);
        `trace`: that of the dispatch that made the cached verdict, when it was recorded."""
        decision = self._decision("OK", "", request_id)
        decision.trace = trace
        decision.cached = True
        decision.cached_body = body
        self._log.finish(self, decision)

    def rate_limited(
        self,
        domain: str,
        descriptors: Sequence[DescriptorRequest],
        answer: RateLimitDecision | None,
        metadata: Any = None,
        failure: Rejection | None = None,
    ) -> None:
        """A ShouldRateLimit answer, or the status it failed with."""
        if failure is not None:
            code, message = failure.code.name, failure.message
        else:
            code, message = ("OVER_LIMIT" if answer is not None and answer.code == 2 else "OK"), ""
        decision = self._decision(code, message, _metadata_request_id(metadata))
        decision.trace = None
        decision.domain = domain
        decision.handler = self._log.rate_limit_handler(domain)
        decision.descriptors = descriptors
        decision.statuses = answer.statuses if answer is not None else ()
        self._log.finish(self, decision)


def _request_id(bag: AttributeBag) -> str | None:
    # peek: reading it must not become a reference (it would split the proxies' cache keys)
    found = bag.peek("request.id")
    if isinstance(found, str) and found:
        return found
    headers = bag.peek("request.headers")
    if isinstance(headers, dict):
        return headers.get("x-request-id") or None
    return None


def _metadata_request_id(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "x-request-id" and isinstance(value, str):
            return value
    return None


__all__ = ["LOGGER", "OFF", "DecisionLog", "Note", "traces"]
