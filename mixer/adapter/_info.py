"""`AdapterInfo`: one adapter, as its plugin declares it in answer to `mixerd_adapter_info`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..params import Problem
from ._env import Env, InstanceInfo

Validate = Callable[[Any, Mapping[str, InstanceInfo]], Iterable[Problem]]
Build = Callable[[Env], Any]


@dataclass(frozen=True)
class AdapterInfo:
    """One adapter, as its plugin declares it.

    - `name`: what handlers name in `compiledAdapter` (and the legacy kind of the same name);
    - `templates`: the templates its handlers accept (each needs a `handle_<template>` method);
    - `params`: a dataclass whose defaults are the default config (see `mixerd.params`);
    - `build(env)`: returns a handler (or an awaitable of one);
    - `validate(params, instances)`: optional pure checks returning (field path, reason) pairs;
    - `rate_limits`: its handlers implement `handle_rate_limits(calls)`, so a `ratelimitconfig` may
      name them to count Envoy's rate limits.
    """

    name: str
    templates: tuple[str, ...]
    params: type
    build: Build
    validate: Validate | None = None
    description: str = ""
    rate_limits: bool = False
