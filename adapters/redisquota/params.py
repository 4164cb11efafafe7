"""redisquota's params: Mixer's `adapter.redisquota.config.Params` (MIXER.md 7.9), with its defaults, plus
what operators of today's rate limiters expect: TLS and credentials in the URL, Cluster and Sentinel, a
timeout, a failure policy, and the local cache of exhausted buckets."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum

from mixerd.adapter import Duration, Problem

from .address import address_problems, sentinel_problems

_ZERO = Duration(0)  # module constants: Duration is immutable, so sharing one is safe
_ONE_SECOND = Duration(1_000_000_000)
_TIMEOUT = Duration(100_000_000)
_ONE_MS = 1_000_000

#: The most buckets one rolling window may have (each is a list entry in Redis while it is in the window).
MAX_BUCKETS = 10_000


class Algorithm(IntEnum):
    """adapter.redisquota.config.Params.QuotaAlgorithm."""

    FIXED_WINDOW = 0
    ROLLING_WINDOW = 1


class FailPolicy(IntEnum):
    """What a quota answers while Redis cannot be reached (or does not answer within `timeout`)."""

    closed = 0  # grant nothing, with status UNAVAILABLE (what Mixer did)
    open = 1  # grant what was asked


@dataclass
class Override:
    """A limit for the instances whose dimensions include all of these (compared as text)."""

    dimensions: dict[str, str] = field(default_factory=dict)
    max_amount: int = 0


@dataclass
class Quota:
    """The limit of one quota instance, named by its FQN (e.g. requestcount.instance.istio-system)."""

    name: str = ""
    max_amount: int = 0
    valid_duration: Duration = _ZERO  # the window
    bucket_duration: Duration = _ZERO  # ROLLING_WINDOW only: the granularity of the window
    rate_limit_algorithm: Algorithm = Algorithm.FIXED_WINDOW
    overrides: list[Override] = field(default_factory=list)


@dataclass
class Params:
    quotas: list[Quota] = field(default_factory=list)
    # host:port (Mixer's form), redis://[user:password@]host:port[/db], rediss://... (TLS), or
    # unix:///path/to/socket[?db=N]. With `sentinels`, the host names the Sentinel master.
    redis_server_url: str = "localhost:6379"
    connection_pool_size: int = 10
    # redisServerUrl names one node of a Redis Cluster; the others are discovered from it.
    cluster: bool = False
    # host:port of Sentinels to ask for the master named by redisServerUrl's host.
    sentinels: list[str] = field(default_factory=list)
    sentinel_password: str = ""
    # How long a Check waits for Redis before answering as `fail_policy` says.
    timeout: Duration = _TIMEOUT
    fail_policy: FailPolicy = FailPolicy.closed
    # Remember buckets Redis said are used up until their window frees room, and deny them locally.
    exhausted_cache: bool = True
    # How long a request's deduplication id is remembered.
    min_deduplication_duration: Duration = _ONE_SECOND

    def check(self) -> Iterator[Problem]:
        """Every rule the types cannot say, as (path, reason). Pure: no network."""
        url = self.redis_server_url
        for reason in address_problems(url, cluster=self.cluster, sentinel=bool(self.sentinels)):
            yield ".redisServerUrl", reason
        for i, address in enumerate(self.sentinels):
            yield from ((f".sentinels[{i}]", reason) for reason in sentinel_problems(address))
        if self.cluster and self.sentinels:
            yield ".sentinels", "a Redis Cluster has no Sentinels: set cluster or sentinels, not both"
        if self.connection_pool_size < 1:
            yield ".connectionPoolSize", f"must be at least 1, got {self.connection_pool_size}"
        if self.timeout <= 0:
            yield ".timeout", f"must be greater than 0, got {self.timeout}"
        if self.min_deduplication_duration <= 0:
            reason = f"must be greater than 0, got {self.min_deduplication_duration}"
            yield ".minDeduplicationDuration", reason
        first: dict[str, int] = {}
        for i, quota in enumerate(self.quotas):
            at = f".quotas[{i}]"
            if not quota.name:
                reason = "must name a quota instance by its FQN (e.g. requestcount.instance.default)"
                yield f"{at}.name", reason
            elif quota.name in first:
                yield f"{at}.name", f"duplicate quota {quota.name!r} (also at .quotas[{first[quota.name]}])"
            else:
                first[quota.name] = i
            yield from _check_quota(at, quota)


def _check_quota(at: str, quota: Quota) -> Iterator[Problem]:
    if quota.max_amount <= 0:
        yield f"{at}.maxAmount", f"must be greater than 0, got {quota.max_amount}"
    if quota.valid_duration < _ONE_MS:  # Redis keeps times in microseconds and expiries in milliseconds
        yield f"{at}.validDuration", f"must be at least 1ms, got {quota.valid_duration}"
    elif quota.rate_limit_algorithm == Algorithm.ROLLING_WINDOW:
        bucket = quota.bucket_duration
        if bucket <= 0 or bucket >= quota.valid_duration:
            window = quota.valid_duration
            reason = f"must be greater than 0 and less than validDuration ({window}), got {bucket}"
            yield f"{at}.bucketDuration", reason
        elif math.ceil(quota.valid_duration / bucket) > MAX_BUCKETS:
            buckets = math.ceil(quota.valid_duration / bucket)
            reason = f"makes {buckets} buckets per window; at most {MAX_BUCKETS} are allowed"
            yield f"{at}.bucketDuration", reason
    for j, override in enumerate(quota.overrides):
        if not override.dimensions:
            yield f"{at}.overrides[{j}].dimensions", "must name at least one dimension"
        if override.max_amount <= 0:
            yield f"{at}.overrides[{j}].maxAmount", f"must be greater than 0, got {override.max_amount}"
