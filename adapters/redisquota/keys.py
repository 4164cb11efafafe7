"""Where a bucket lives in Redis, and the limit it counts against.

A bucket is one quota instance and its dimension values. Its keys all carry the same Cluster hash tag,
`{<instance FQN>;<dimension>=<value>;...}` (dimensions sorted by name, values as text), so the script
that touches them runs on one node:

    mixerd:quota:{requestcount.instance.istio-system;source=reviews}:f         FIXED_WINDOW state
    mixerd:quota:{requestcount.instance.istio-system;source=reviews}:r:100ms   ROLLING_WINDOW state
    mixerd:quota:{requestcount.instance.istio-system;source=reviews}:b:100ms   ROLLING_WINDOW buckets
    mixerd:quota:{requestcount.instance.istio-system;source=reviews}:d:<id>    a deduplication id

`%`, `{`, `}`, `;` and `=` inside names and values are percent-encoded, so distinct buckets never share
a key and no value can end the hash tag early.

Envoy's rate limits (`handle_rate_limits`) count in keys of the same layout under their own prefix, the
tag naming the domain, the descriptor entries and the window (so a changed window starts new counters);
their fixed windows are aligned to the epoch (the script's algorithm "a"):

    mixerd:ratelimit:{edge;remote_address=10.0.0.1;1m}:a        FIXED_WINDOW state {e = window end, u = used}
    mixerd:ratelimit:{edge;remote_address=10.0.0.1;1m}:r:10s    ROLLING_WINDOW state
    mixerd:ratelimit:{edge;remote_address=10.0.0.1;1m}:b:10s    ROLLING_WINDOW buckets
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from mixerd.adapter import Dimensions, Duration, RateLimit, RateLimitAlgorithm, matching_override

from .params import Algorithm, Quota

PREFIX = "mixerd:quota:"
RATE_LIMIT_PREFIX = "mixerd:ratelimit:"
_SPECIAL = re.compile(r"[%{};=]")
_US = 1_000


def escape(text: str) -> str:
    return _SPECIAL.sub(lambda m: f"%{ord(m.group()):02X}", text)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bucket: its keys, its limit and what the script needs to count it."""

    state: str
    ticks: str  # ROLLING_WINDOW's bucket list (FIXED_WINDOW: the state key again, unused)
    dedup: str  # the prefix of its deduplication keys
    tag: str  # the hash tag, for the Cluster slot
    max_amount: int
    rolling: bool
    valid_duration: int  # ns: the window
    bucket_ns: int  # ROLLING_WINDOW: the bucket length
    buckets: int  # ROLLING_WINDOW: buckets per window
    window_us: int  # FIXED_WINDOW: the window in microseconds
    idle_ms: int  # how long Redis keeps the keys after their last change


def make_bucket(quota: Quota, dims: Dimensions) -> Bucket:
    """The bucket of `quota` for the dimension values `dims` (sorted (name, text) pairs)."""
    tag = "{" + ";".join([escape(quota.name), *(f"{escape(k)}={escape(v)}" for k, v in dims)]) + "}"
    base = PREFIX + tag
    override = matching_override(quota.overrides, dims)
    max_amount = quota.max_amount if override is None else override.max_amount
    window = int(quota.valid_duration)
    idle_ms = 2 * math.ceil(window / 1_000_000) + 1_000  # twice the window and a second: only for cleanup
    if quota.rate_limit_algorithm == Algorithm.ROLLING_WINDOW:
        size = int(quota.bucket_duration)
        text = str(Duration(size))  # Go's duration text, e.g. 100ms
        return Bucket(
            state=f"{base}:r:{text}",
            ticks=f"{base}:b:{text}",
            dedup=f"{base}:d:",
            tag=tag,
            max_amount=max_amount,
            rolling=True,
            valid_duration=window,
            bucket_ns=size,
            buckets=math.ceil(window / size),
            window_us=window // _US,
            idle_ms=idle_ms,
        )
    return Bucket(
        state=f"{base}:f",
        ticks=f"{base}:f",
        dedup=f"{base}:d:",
        tag=tag,
        max_amount=max_amount,
        rolling=False,
        valid_duration=window,
        bucket_ns=0,
        buckets=0,
        window_us=window // _US,
        idle_ms=idle_ms,
    )


@dataclass(frozen=True, slots=True)
class RateLimitBucket:
    """One rate limit counter: its keys and what the script needs to count it (see the module docstring)."""

    tag: str
    rolling: bool
    window: int  # ns
    bucket_ns: int  # ROLLING_WINDOW: the bucket length
    buckets: int  # ROLLING_WINDOW: buckets per window
    state: str
    ticks: str  # ROLLING_WINDOW's bucket list (FIXED_WINDOW: the state key again, unused)
    idle_ms: int  # how long Redis keeps the keys after their last change


def make_rate_limit_bucket(
    domain: str, entries: tuple[tuple[str, str], ...], limit: RateLimit
) -> RateLimitBucket:
    """The counter of `limit` for `domain` and the descriptor `entries` (as handle_rate_limits gets them)."""
    window = int(limit.window)
    parts = [escape(domain), *(f"{escape(k)}={escape(v)}" for k, v in entries), str(Duration(window))]
    tag = "{" + ";".join(parts) + "}"
    base = RATE_LIMIT_PREFIX + tag
    window_ms = math.ceil(window / 1_000_000)
    if limit.algorithm == RateLimitAlgorithm.ROLLING_WINDOW:
        size = int(limit.bucket_duration)
        text = str(Duration(size))
        state, ticks = f"{base}:r:{text}", f"{base}:b:{text}"
        return RateLimitBucket(
            tag, True, window, size, math.ceil(window / size), state, ticks, 2 * window_ms + 1_000
        )
    # A fixed window's count is dead once its window ends: keep it a second longer, for slow clocks.
    return RateLimitBucket(tag, False, window, 0, 0, f"{base}:a", f"{base}:a", window_ms + 1_000)
