"""What a descriptor's hits count as in envoyproxy/ratelimit's stats, and its whole-second resets.

envoyproxy/ratelimit (src/limiter/base_limiter.go) splits a call's hits by where the counter was
before and after them, against the limit L and the near-limit threshold N = floor(L * NEAR_LIMIT_RATIO)
(computed in float32, as there):

- past L: `over_limit` gets the hits past L, `near_limit` the ones between max(N, before) and L;
  `shadow_mode` the hits past L when the limit is in shadow mode; `within_limit` nothing;
- not past L: `within_limit` gets every hit, `near_limit` the hits past N.

`total_hits` gets every hit either way. mixerd counts all or nothing (a call over the limit is not
added), so "after" is then what the counter would have held.
"""

from __future__ import annotations

import functools
import math
import struct
from typing import NamedTuple

_S = 1_000_000_000


class Hits(NamedTuple):
    """One descriptor's hits in each of envoyproxy/ratelimit's per-descriptor stats (a tuple: one is made
    for every request descriptor)."""

    total: int = 0
    within: int = 0
    near: int = 0
    over: int = 0
    shadow: int = 0


NO_HITS = Hits()


def _float32(value: float) -> float:
    return float(struct.unpack("f", struct.pack("f", value))[0])


@functools.lru_cache(maxsize=4096)  # a few limits, one ratio: computed once each, not per request
def near_threshold(limit: int, ratio: float) -> int:
    """How many hits a window takes before the next are near its limit (envoyproxy/ratelimit's float32
    arithmetic: 0.8 of 10 is 8, of 5 is 4)."""
    return math.floor(_float32(_float32(limit) * _float32(ratio)))


def account(limit: int, before: int, hits: int, ratio: float, shadow: bool) -> Hits:
    """The stats of `hits` counted against `limit` by a counter that held `before`."""
    after = before + hits
    near_at = near_threshold(limit, ratio)
    if after > limit:
        over = hits if before >= limit else after - limit
        near = 0 if before >= limit else limit - max(near_at, before)
        return Hits(hits, 0, near, over, over if shadow else 0)
    near = 0
    if after > near_at:
        near = hits if before >= near_at else after - near_at
    return Hits(hits, hits, near)


def whole_seconds(ns: int) -> int:
    """`ns` rounded up to whole seconds (in ns). envoyproxy/ratelimit answers `unit - now % unit` in
    whole seconds of Unix time: for windows aligned to whole seconds that is the time left, rounded up."""
    return -(-max(ns, 0) // _S) * _S
