"""The redisquota handler: quotas counted in Redis, shared by every mixerd that uses the same Redis.

All quotas of one Check go to Redis in one script call (`handle_quotas`, which the runtime prefers to
one `handle_quota` per quota), and so do all rate limits of one Envoy ShouldRateLimit request
(`handle_rate_limits`, with the same script). Redis is reached on the event loop (client.py); a call
gets at most `timeout`, and while Redis cannot be reached quotas answer as `failPolicy`
says at once, while a background task keeps trying to reach it again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from redis.exceptions import BusyLoadingError, ReadOnlyError, RedisError, ResponseError

from mixerd.adapter import (
    Code,
    Duration,
    Env,
    QuotaArgs,
    QuotaInstance,
    QuotaResult,
    RateLimitCall,
    RateLimitResult,
    dimension_texts,
)

from .address import parse_address
from .cache import AnsweredIds, ExhaustedBuckets
from .client import Backend, ClusterBackend, Operation, Reply
from .keys import Bucket, RateLimitBucket, make_bucket, make_rate_limit_bucket
from .params import FailPolicy, Params, Quota

_US = 1_000
_NOTHING = QuotaResult(granted_amount=0)  # an instance with no quota configured (MIXER.md 7.9)
_ALLOWED = RateLimitResult(True)
_FIRST_RETRY_S = 0.05
_MAX_RETRY_S = 1.0
_ERROR_LOG_INTERVAL_S = 10.0
_MAX_BUCKETS = 10_000  # bucket layouts remembered (each is a few strings)


class RedisQuota:
    """One handler: its buckets' layout, its connection state, and its local caches."""

    def __init__(self, params: Params, env: Env, backend: Backend | ClusterBackend) -> None:
        self._env = env
        self._log = env.logger
        self._clock = env.clock
        self._quotas: dict[str, Quota] = {q.name: q for q in params.quotas}
        self._backend = backend
        self._where = parse_address(params.redis_server_url).redacted()
        self._timeout = params.timeout / 1e9
        self._fail_open = params.fail_policy == FailPolicy.open
        self._policy = params.fail_policy.name
        self._remember_us = max(1, params.min_deduplication_duration // _US)
        self._cache = params.exhausted_cache
        self._exhausted = ExhaustedBuckets()
        self._answered = AnsweredIds(int(params.min_deduplication_duration))
        self._buckets: dict[tuple[str, tuple[tuple[str, str], ...]], Bucket] = {}
        self._rate_limit_buckets: dict[tuple[Any, ...], RateLimitBucket] = {}
        self._tried = False  # whether a first connection attempt has finished
        self._first_connect: asyncio.Task[Any] | None = None  # a rate limit handler's first attempt
        self._up = False
        self._reason = "not connected yet"
        self._last_error = ""  # the last failure's text, for backend_state
        self._reconnecting: asyncio.Task[Any] | None = None
        self._closed = False
        self._last_error_log = 0.0
        #: What happened to quota operations so far (for tests, benchmarks and operators' debugging).
        self.stats = {"redis_calls": 0, "cached_denials": 0, "cached_answers": 0, "failed": 0}

    @property
    def available(self) -> bool:
        """Whether Redis answered the last time it was asked."""
        return self._up

    def backend_state(self) -> dict[str, Any]:
        """Redis as this handler sees it, for the admin page: whether it answers, where it is (no
        password), the fail policy and the answers it gave, the last error (kept after Redis answers
        again) and the counters."""
        return {
            "connected": self._up,
            "address": self._where,
            "fail_policy": self._policy,
            "fail_policy_answers": self.stats["failed"],
            "last_error": self._last_error,
            "stats": dict(self.stats),
        }

    async def start(self) -> None:
        """Reach Redis once (within the timeout); if that fails, keep trying in the background."""
        if not self._quotas:
            return  # nothing to count (until a ratelimitconfig's first request, see handle_rate_limits)
        await self._connect()

    async def _connect(self) -> None:
        try:
            await self._connect_once()
        finally:
            self._tried = True

    async def _connect_once(self) -> None:
        try:
            await self._backend.connect(self._deadline())
        except (RedisError, OSError, TimeoutError) as e:
            self._reason = self._last_error = _describe(e)
            self._log.warning(
                "%s: cannot reach Redis at %s (%s); retrying in the background, quotas fail %s until then",
                self._env.handler,
                self._where,
                self._reason,
                self._policy,
            )
            self._retry_in_background()
            return
        self._up = True

    async def handle_quota(self, instance: QuotaInstance, args: QuotaArgs) -> QuotaResult:
        return (await self.handle_quotas([(instance, args)]))[0]

    async def handle_quotas(self, calls: Sequence[tuple[QuotaInstance, QuotaArgs]]) -> list[QuotaResult]:
        """Every quota of one Check, in one Redis round trip (one per hash slot on a Cluster)."""
        now = self._clock()
        results: list[QuotaResult] = [_NOTHING] * len(calls)
        pending: list[tuple[int, Bucket, QuotaArgs]] = []
        for i, (instance, args) in enumerate(calls):
            quota = self._quotas.get(instance.name)
            if quota is None:
                continue
            bucket = self._bucket(quota, instance)
            if self._cache:
                local = self._local_answer(bucket, args, now)
                if local is not None:
                    results[i] = local
                    continue
            pending.append((i, bucket, args))
        if pending:
            await self._ask_redis(pending, now, results)
        return results

    async def handle_rate_limits(self, calls: Sequence[RateLimitCall]) -> list[RateLimitResult]:
        """Envoy's rate limits of one ShouldRateLimit request, in one Redis round trip (one per hash slot
        on a Cluster); a counter Redis said is used up is answered here until room opens."""
        if not self._tried:  # a handler without quotas connects on its first rate limit request
            if self._first_connect is None:
                self._first_connect = self._env.spawn(self._connect, name=f"{self._env.handler} connect")
            await asyncio.shield(self._first_connect)  # shared by the requests that come meanwhile
        now = self._clock()
        results: list[RateLimitResult] = [_ALLOWED] * len(calls)
        pending: list[tuple[int, RateLimitBucket, RateLimitCall]] = []
        for i, call in enumerate(calls):
            bucket = self._rate_limit_bucket(call)
            if self._cache and call.hits > 0:
                until = self._exhausted.until(f"{bucket.state}#{call.limit.max_amount}", now)
                if until:
                    self.stats["cached_denials"] += 1
                    results[i] = RateLimitResult(False, 0, Duration(until - now))
                    continue
            pending.append((i, bucket, call))
        if pending:
            await self._count_rate_limits(pending, now, results)
        return results

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._up = False
        # The runtime cancelled these; their frames refer back to this handler (no cycle may outlive close).
        self._reconnecting = self._first_connect = None
        await self._backend.close()

    # -- answers --------------------------------------------------------------------------------

    def _local_answer(self, bucket: Bucket, args: QuotaArgs, now: int) -> QuotaResult | None:
        """The answer the caches already know, or None to ask Redis."""
        if args.dedup_id:
            earlier = self._answered.get(args.dedup_id, now)
            if earlier is not None:
                self.stats["cached_answers"] += 1
                return QuotaResult(earlier[0], Duration(max(0, earlier[1] - now)))
        until = self._exhausted.until(bucket.state, now)
        if not until:
            return None
        self.stats["cached_denials"] += 1
        end = now + bucket.valid_duration if bucket.rolling else until
        if args.dedup_id:
            self._answered.add(args.dedup_id, 0, end, now)
        return QuotaResult(0, Duration(end - now))

    async def _ask_redis(
        self, pending: list[tuple[int, Bucket, QuotaArgs]], now: int, results: list[QuotaResult]
    ) -> None:
        if not self._up:
            self._fail(pending, results)
            return
        operations = [self._operation(bucket, args, now) for _, bucket, args in pending]
        try:
            self.stats["redis_calls"] += 1
            replies = await self._backend.run(now // _US, operations, self._deadline())
        except (RedisError, OSError, TimeoutError) as e:
            if isinstance(e, ResponseError) and not isinstance(e, ReadOnlyError | BusyLoadingError):
                self._log_error(e)  # Redis answered, with an error: nothing to reconnect
            else:
                self._lost(e)
            self._fail(pending, results)
            return
        for (i, bucket, args), reply in zip(pending, replies, strict=True):
            results[i] = self._answer(bucket, args, reply, now)

    def _operation(self, bucket: Bucket, args: QuotaArgs, now: int) -> Operation:
        dedup = bucket.dedup + args.dedup_id if args.dedup_id else bucket.state
        argv: list[Any] = [
            "r" if bucket.rolling else "f",
            bucket.max_amount,
            args.amount,
            "1" if args.best_effort else "0",
            self._remember_us if args.dedup_id else 0,
            bucket.buckets if bucket.rolling else bucket.window_us,
            now // bucket.bucket_ns if bucket.rolling else 0,
            bucket.valid_duration // _US,
            bucket.idle_ms,
        ]
        return bucket.tag, (bucket.state, bucket.ticks, dedup), tuple(argv)

    def _answer(self, bucket: Bucket, args: QuotaArgs, reply: Reply, now: int) -> QuotaResult:
        hit, granted, when, left = reply
        if hit:
            end = when * _US  # the earlier answer's end
        elif bucket.rolling:
            end = now + bucket.valid_duration
            if left <= 0 and self._cache:
                self._exhausted.add(bucket.state, when * bucket.bucket_ns, now)
        else:
            end = when * _US  # the window's end
            if left <= 0 and self._cache:
                self._exhausted.add(bucket.state, end, now)
        if self._cache and args.dedup_id and not hit:
            self._answered.add(args.dedup_id, granted, end, now)
        return QuotaResult(granted, Duration(max(0, end - now)))

    async def _count_rate_limits(
        self,
        pending: list[tuple[int, RateLimitBucket, RateLimitCall]],
        now: int,
        results: list[RateLimitResult],
    ) -> None:
        if not self._up:
            self._fail_rate_limits(pending, results)
            return
        operations: list[Operation] = []
        for _, bucket, call in pending:
            keys = (bucket.state, bucket.ticks, bucket.state)  # the third: no deduplication id
            argv = (
                "r" if bucket.rolling else "a",
                call.limit.max_amount,
                call.hits,
                "0",
                0,  # no deduplication id
                bucket.buckets if bucket.rolling else bucket.window // _US,
                now // bucket.bucket_ns if bucket.rolling else 0,
                bucket.window // _US,
                bucket.idle_ms,
            )
            operations.append((bucket.tag, keys, argv))
        try:
            self.stats["redis_calls"] += 1
            replies = await self._backend.run(now // _US, operations, self._deadline())
        except (RedisError, OSError, TimeoutError) as e:
            if isinstance(e, ResponseError) and not isinstance(e, ReadOnlyError | BusyLoadingError):
                self._log_error(e)
            else:
                self._lost(e)
            self._fail_rate_limits(pending, results)
            return
        for (i, bucket, call), (_hit, granted, when, left) in zip(pending, replies, strict=True):
            # when: a fixed window's end (us), or the bucket in which room opens again (0: nothing counted)
            until = (when * bucket.bucket_ns if when else now) if bucket.rolling else when * _US
            if left <= 0 and self._cache:
                self._exhausted.add(f"{bucket.state}#{call.limit.max_amount}", until, now)
            allowed = call.hits <= 0 or granted == call.hits
            results[i] = RateLimitResult(allowed, left, Duration(max(0, until - now)))

    def _fail_rate_limits(
        self, pending: list[tuple[int, RateLimitBucket, RateLimitCall]], results: list[RateLimitResult]
    ) -> None:
        """Answer as the fail policy says: allowed (open) or not (closed), with status UNAVAILABLE."""
        self.stats["failed"] += len(pending)
        message = f"redisquota: Redis at {self._where} is unavailable: {self._reason}"
        for i, *_ in pending:
            results[i] = RateLimitResult(self._fail_open, 0, Duration(0), Code.UNAVAILABLE, message)

    def _rate_limit_bucket(self, call: RateLimitCall) -> RateLimitBucket:
        limit = call.limit
        key = (call.domain, call.entries, limit.window, limit.algorithm, limit.bucket_duration)
        bucket = self._rate_limit_buckets.get(key)
        if bucket is None:
            if len(self._rate_limit_buckets) >= _MAX_BUCKETS:
                self._rate_limit_buckets.clear()
            bucket = self._rate_limit_buckets[key] = make_rate_limit_bucket(call.domain, call.entries, limit)
        return bucket

    def _fail(self, pending: list[tuple[int, Bucket, QuotaArgs]], results: list[QuotaResult]) -> None:
        """Answer as the fail policy says: grant what was asked (open) or nothing (closed)."""
        self.stats["failed"] += len(pending)
        for i, _bucket, args in pending:
            if self._fail_open:
                results[i] = QuotaResult(max(args.amount, 0), Duration(0))
            else:
                message = f"redisquota: Redis at {self._where} is unavailable: {self._reason}"
                results[i] = QuotaResult(0, Duration(0), Code.UNAVAILABLE, message)

    def _bucket(self, quota: Quota, instance: QuotaInstance) -> Bucket:
        dims = dimension_texts(instance.dimensions)
        key = (quota.name, dims)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _MAX_BUCKETS:
                self._buckets.clear()
            bucket = self._buckets[key] = make_bucket(quota, dims)
        return bucket

    # -- the connection -------------------------------------------------------------------------

    def _deadline(self) -> float:
        """When a Redis call started now must have its answer (loop time)."""
        return asyncio.get_running_loop().time() + self._timeout

    def _lost(self, error: BaseException) -> None:
        self._reason = self._last_error = _describe(error)
        if self._up:
            self._up = False
            self._log.warning(
                "%s: Redis at %s is unavailable (%s); quotas fail %s until it answers again",
                self._env.handler,
                self._where,
                self._reason,
                self._policy,
            )
        self._retry_in_background()

    def _retry_in_background(self) -> None:
        if self._closed or (self._reconnecting is not None and not self._reconnecting.done()):
            return
        self._reconnecting = self._env.spawn(self._reconnect, name=f"{self._env.handler} reconnect")

    async def _reconnect(self) -> None:
        delay = _FIRST_RETRY_S
        while not self._closed:
            await asyncio.sleep(delay)
            try:
                await self._backend.reset()  # no connection from before the failure is trusted
                await self._backend.connect(self._deadline())
            except (RedisError, OSError, TimeoutError) as e:
                self._reason = self._last_error = _describe(e)
                delay = min(delay * 2, _MAX_RETRY_S)
                continue
            # Redis may have restarted empty: forget what it said was used up.
            self._exhausted.clear()
            self._answered.clear()
            self._up = True
            self._log.info("%s: Redis at %s answers again", self._env.handler, self._where)
            return

    def _log_error(self, error: BaseException) -> None:
        """Log a Redis error reply, at most once per interval (a broken bucket would flood the log)."""
        now = time.monotonic()
        if now - self._last_error_log >= _ERROR_LOG_INTERVAL_S:
            self._last_error_log = now
            self._log.error("%s: Redis refused a quota call: %s", self._env.handler, _describe(error))
        self._reason = self._last_error = _describe(error)


def _describe(error: BaseException) -> str:
    text = str(error)
    if isinstance(error, TimeoutError) and not text:
        return "no answer within the timeout"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
