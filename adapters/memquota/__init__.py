"""memquota: quotas counted in this process's memory (MIXER.md 7.8).

A quota with a `validDuration` is a rate limit over a rolling window of 100 ms ticks; one without is
an allocation quota (a counter that a negative amount gives back). It also counts Envoy's rate limits
for a ratelimitconfig that names it (`handle_rate_limits`). Counts are per mixerd process, so with
several replicas use redisquota instead.
"""

from __future__ import annotations

from collections.abc import Mapping

from mixerd.adapter import AdapterInfo, Env, InstanceInfo, Problem, hookimpl, unconfigured_quotas

from .handler import MemQuota, UnknownQuota
from .params import Override, Params, Quota

__all__ = ["MemQuota", "Override", "Params", "Quota", "UnknownQuota", "build", "validate"]


def validate(params: Params, instances: Mapping[str, InstanceInfo]) -> list[Problem]:
    """The params rules (also run by `read_params` through `Params.check`), and a Quota entry for every
    quota instance that rules send to the handler."""
    return [*params.check(), *unconfigured_quotas((q.name for q in params.quotas), instances)]


def build(env: Env) -> MemQuota:
    return MemQuota(env.params, env)


@hookimpl
def mixerd_adapter_info() -> AdapterInfo:
    return AdapterInfo(
        name="memquota",
        templates=("quota",),
        params=Params,
        build=build,
        validate=validate,
        description="Rate-limit and allocation quotas counted in memory, per mixerd process.",
        rate_limits=True,
    )
