"""redisquota: rate limits counted in Redis, shared by every mixerd replica (MIXER.md 7.9, docs/quota.md).

Each quota is a FIXED_WINDOW or ROLLING_WINDOW rate limit; one atomic Lua script (EVALSHA) counts every
quota of a Check in one round trip. Redis may be one server (redis://, rediss://, unix://), a Cluster or
a master found by Sentinels. Validation never touches the network; the handler connects when it is
built and, while Redis is away, answers as its `failPolicy` says and keeps trying in the background.
"""

from __future__ import annotations

from collections.abc import Mapping

from mixerd.adapter import AdapterInfo, Env, InstanceInfo, Problem, hookimpl, unconfigured_quotas

from .client import make_backend
from .handler import RedisQuota
from .params import Algorithm, FailPolicy, Override, Params, Quota

__all__ = [
    "Algorithm",
    "FailPolicy",
    "Override",
    "Params",
    "Quota",
    "RedisQuota",
    "build",
    "mixerd_adapter_info",
    "validate",
]


def validate(params: Params, instances: Mapping[str, InstanceInfo]) -> list[Problem]:
    """The params rules (also run by `read_params` through `Params.check`), and a Quota entry for every
    quota instance that rules send to the handler. Pure: Redis is not asked anything."""
    return [*params.check(), *unconfigured_quotas((q.name for q in params.quotas), instances)]


async def build(env: Env) -> RedisQuota:
    """The handler, connected if Redis answers within the timeout (otherwise retrying in the background)."""
    handler = RedisQuota(env.params, env, make_backend(env.params))
    await handler.start()
    return handler


@hookimpl
def mixerd_adapter_info() -> AdapterInfo:
    return AdapterInfo(
        name="redisquota",
        templates=("quota",),
        params=Params,
        build=build,
        validate=validate,
        description="Fixed and rolling window rate limits counted in Redis, shared by every replica.",
        rate_limits=True,
    )
