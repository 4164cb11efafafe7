"""listchecker: checks a value (a string or an IP address) against a whitelist or a blacklist.

The list is the handler's `overrides` plus, when `providerUrl` is set, entries fetched from that URL in
the background and refreshed every `refreshInterval` (MIXER.md 7.6; Mixer's package `list`).
"""

from __future__ import annotations

from collections.abc import Mapping

from mixerd.adapter import AdapterInfo, Env, InstanceInfo, Problem, hookimpl

from .handler import ListChecker, ListUnavailable
from .params import EntryType, Params

__all__ = ["EntryType", "ListChecker", "ListUnavailable", "Params", "build", "validate"]


def validate(params: Params, instances: Mapping[str, InstanceInfo]) -> list[Problem]:
    """The params rules (also run by `read_params` through `Params.check`); no network."""
    return list(params.check())


def build(env: Env) -> ListChecker:
    """The handler; the first fetch and the refreshes run in the background, so build never waits."""
    params: Params = env.params
    handler = ListChecker(params, env)
    if params.provider_url:
        env.spawn(handler.refresh, name=f"{env.handler} first list fetch")
        every_s = params.refresh_interval.total_seconds()
        env.every(every_s, handler.refresh, name=f"{env.handler} list refresh")
    return handler


@hookimpl
def mixerd_adapter_info() -> AdapterInfo:
    return AdapterInfo(
        name="listchecker",
        templates=("listentry",),
        params=Params,
        build=build,
        validate=validate,
        description="Checks a string or IP address against a whitelist or blacklist, local or fetched.",
    )
