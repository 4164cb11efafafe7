"""The adapter author's manual: the hooks a mixerd adapter plugin implements.

An adapter is a Python module (or any object) with a function decorated by `mixerd.adapter.hookimpl`;
mixerd finds it through the entry-point group `mixerd.adapters` of an installed package::

    [project.entry-points."mixerd.adapters"]
    myadapter = "mixerd_myadapter"

Built-in adapters come in through the same door (see `mixerd.plugins`). docs/adapters.md walks through
writing, testing and publishing one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # only a type here: mixerd.adapter re-exports hookimpl, so importing it would cycle
    from .adapter import AdapterInfo

PROJECT = "mixerd"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def mixerd_adapter_info() -> AdapterInfo | list[AdapterInfo]:  # type: ignore[empty-body]
    """Describe the adapter (or adapters) this plugin provides.

    Return a `mixerd.adapter.AdapterInfo` (or a list of them) with:

    - `name`: the name handlers use (`compiledAdapter: <name>`, or the legacy `kind: <name>`);
      it must be unique among installed adapters;
    - `templates`: the templates its handlers accept, by name (`metric`, `logentry`, `tracespan`,
      `quota`, `listentry`, `checknothing`, `reportnothing`, `authorization`, `apikey`, `kubernetes`);
    - `params`: a dataclass whose field defaults are the adapter's default config. mixerd reads a
      handler's `params` into it strictly (lowerCamel or snake_case names, durations as "1s", enums
      by name) and reports any problem with its field path; see `mixerd.params`;
    - `validate(params, instances)` (optional): pure checks that need more than the types, returning
      `(field path, reason)` pairs. `instances` maps each instance FQN that rules send to this handler
      to its `InstanceInfo` (template and inferred field types). No network here: it also runs in
      `mixerd check-config`;
    - `build(env)`: make the handler. `env` (`mixerd.adapter.Env`) carries the read params, the
      instances, a logger, the clock to use for anything time decides, the server's settings
      (`env.settings`, e.g. the bind address and `prometheus_port`), and `spawn`/`every` for
      background work that mixerd cancels when the handler closes. It may be a coroutine function.
      An unreachable backend is not a reason to fail: build anyway, retry in the background, and
      answer requests as the adapter's fail policy says. If build raises, the handler is unavailable
      (its checks fail with INTERNAL, its quotas grant 0) until the config changes;
    - `description`: one line for listings;
    - `rate_limits` (optional, default False): its handlers also count Envoy's rate limits through
      `handle_rate_limits` (below), so a `ratelimitconfig` resource may name them as its `handler`.
      A `ratelimitconfig` that names a handler of an adapter without it is a config error.

    The handler is any object with one method per supported template, sync or async:

    - CHECK templates: `handle_<template>(instance) -> CheckResult`. A denial is a CheckResult with a
      non-OK status; raising means "adapter error" and fails the whole Check with INTERNAL;
    - QUOTA: `handle_quota(instance, args: QuotaArgs) -> QuotaResult` (deny = granted_amount 0);
      optionally also `handle_quotas([(instance, args), ...]) -> [QuotaResult, ...]`, which mixerd
      prefers when present: every quota of one Check for this handler in one call (redisquota uses it
      to spend one Redis round trip per Check);
    - REPORT templates: `handle_<template>(instances: list) -> None`, called once per Report request
      with every instance built for this handler; it must not wait on a backend (queue the work);
    - ATTRIBUTE_GENERATOR: `handle_<template>(instance) -> Mapping[str, value]` of output fields;
    - rate limits (adapters with `rate_limits`): `handle_rate_limits([RateLimitCall, ...]) ->
      [RateLimitResult, ...]`, one result per call in the same order. mixerd hands it every limit of
      one Envoy ShouldRateLimit request at once (redisquota spends one Redis round trip on them). Each
      call names its counter (`domain`, `entries`, and the limit's window, algorithm and bucket
      duration; equal names are one counter) and counts `hits` against `limit.max_amount`, all or
      nothing; FIXED_WINDOW windows are aligned to the Unix epoch. A backend that cannot answer is
      not an exception: answer each call as your fail policy says, with a non-OK `status`. Raising
      (or missing the deadline) fails the whole ShouldRateLimit with UNAVAILABLE;

    and optionally `close()` (sync or async), called once after the last request that could use the
    handler has finished (config reload or shutdown), after mixerd has cancelled the handler's
    background work. It must be idempotent and safe on a handler whose background work failed.

    An `async def` method is awaited (within the adapter timeout); a plain `def` is called inline and
    must not return an awaitable. Both run on the event loop: neither may block.
    """
