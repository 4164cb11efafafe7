"""What handlers answer, and what quota and rate limit calls ask: statuses are google.rpc codes (`Code`),
the numbers gRPC statuses use too."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from ..attribute.values import Duration


class Code(IntEnum):
    """google.rpc.Code."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


_SECOND = 1_000_000_000
_MINUTE: Duration = Duration(60 * _SECOND)
_NO_TIME: Duration = Duration(0)


@dataclass(frozen=True, slots=True)
class DirectResponse:
    """An HTTP answer the proxy sends instead of forwarding a denied request (MIXER.md 8.3).

    `code` 0 means "map it from the deny status" (PERMISSION_DENIED -> 403, ...).
    """

    code: int = 0
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A check handler's verdict on one instance.

    A denial is a non-OK `status` with a `message`; it is not an exception (an exception is an adapter
    error, and fails the whole Check with INTERNAL). The proxy may cache the verdict for
    `valid_duration` or `valid_use_count` uses, whichever runs out first; Check answers the minimum over
    every handler that answered.
    """

    status: int = Code.OK
    message: str = ""
    valid_duration: Duration = _MINUTE
    valid_use_count: int = 10000
    direct_response: DirectResponse | None = None


@dataclass(frozen=True, slots=True)
class QuotaArgs:
    """What a Check asks of one quota: `amount` units, all or nothing unless `best_effort`.

    `dedup_id` is the same on a retried request; quota handlers answer a repeated id with the earlier
    result instead of charging twice.
    """

    amount: int
    best_effort: bool = False
    dedup_id: str = ""


@dataclass(frozen=True, slots=True)
class QuotaResult:
    """A quota handler's grant. A denial is `granted_amount` 0 (with an OK status, as in Mixer)."""

    granted_amount: int
    valid_duration: Duration = _NO_TIME
    status: int = Code.OK
    message: str = ""


class RateLimitAlgorithm(IntEnum):
    """How a rate limit counts its window (the values of redisquota's `rateLimitAlgorithm`)."""

    FIXED_WINDOW = 0
    ROLLING_WINDOW = 1


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `max_amount` hits per `window`.

    FIXED_WINDOW windows are aligned to the Unix epoch (one starts whenever the clock is a whole number
    of windows), as envoyproxy/ratelimit's are. ROLLING_WINDOW counts in buckets of `bucket_duration`,
    also aligned to the epoch; the window is the last ceil(window / bucket_duration) buckets, the
    current one included.
    """

    max_amount: int
    window: Duration
    algorithm: RateLimitAlgorithm = RateLimitAlgorithm.FIXED_WINDOW
    bucket_duration: Duration = _NO_TIME  # ROLLING_WINDOW only; > 0 and < window


@dataclass(frozen=True, slots=True)
class RateLimitCall:
    """One limit to count `hits` against, for Envoy's rate limit service (docs/envoy/ratelimit.md).

    The counter is named by `domain`, `entries` and the limit's window, algorithm and bucket duration:
    calls that agree on all of them count in one counter (also across replicas that share a backend),
    whatever their `max_amount`, so a changed limit applies to the counts already there.
    """

    domain: str
    entries: tuple[tuple[str, str], ...]  # (key, value) pairs, in the descriptor's order
    limit: RateLimit
    hits: int = 1


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    """What one RateLimitCall came to.

    All or nothing: `allowed` when the hits fit in what the window has left (they are then counted);
    a call that is not allowed counts nothing. `hits` 0 is allowed and counts nothing. `remaining` is
    what the window has left after the call; `reset` how long until room opens again (FIXED_WINDOW: the
    window's end; ROLLING_WINDOW: the moment the oldest counted bucket leaves the window; 0 when nothing
    is counted). A backend that cannot answer gives a non-OK `status` and `message`, with `allowed` as
    the handler's fail policy says.
    """

    allowed: bool
    remaining: int = 0
    reset: Duration = _NO_TIME
    status: int = Code.OK
    message: str = ""
