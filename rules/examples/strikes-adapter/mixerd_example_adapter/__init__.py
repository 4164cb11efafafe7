"""strikes: an example mixerd adapter, in a package of its own.

Reported requests that a rule picks (say, answers with status 401) are strikes against an offender (say,
the source principal). An offender with `maxStrikes` strikes within `window` is "in the box": its checks
fail with `status` until enough strikes have left the window.

mixerd finds this module through the entry point in pyproject.toml and calls `mixerd_adapter_info`.
"""

from __future__ import annotations

from collections.abc import Mapping

from mixerd.adapter import AdapterInfo, Env, InstanceInfo, Problem, ValueType, hookimpl

from .handler import StrikesHandler
from .params import Params

__all__ = ["Params", "StrikesHandler", "build", "mixerd_adapter_info", "validate"]


def validate(params: Params, instances: Mapping[str, InstanceInfo]) -> list[Problem]:
    """Checks that need the instances rules send to the handler. Pure: no network, no files."""
    problems: list[Problem] = []
    for name, info in sorted(instances.items()):
        if info.template == "listentry" and info.types.get("value") != ValueType.STRING:
            got = _type_name(info.types.get("value"))
            problems.append(("", f"instance {name!r}: the listentry value must be a STRING, got {got}"))
        if info.template == "metric":
            dimensions = info.types.get("dimensions") or {}
            if dimensions.get(params.dimension) != ValueType.STRING:
                got = _type_name(dimensions.get(params.dimension))
                reason = f"instance {name!r} needs a STRING dimension {params.dimension!r}, got {got}"
                problems.append((".dimension", reason))
    return problems


def build(env: Env) -> StrikesHandler:
    """The handler, plus a background job that forgets old strikes (mixerd cancels it at close)."""
    handler = StrikesHandler(env)
    env.every(env.params.window.total_seconds(), handler.forget_old, name=f"{env.handler} forget")
    return handler


@hookimpl
def mixerd_adapter_info() -> AdapterInfo:
    return AdapterInfo(
        name="strikes",
        templates=("listentry", "metric"),
        params=Params,
        build=build,
        validate=validate,
        description="Boxes an offender once reported requests give it too many strikes.",
    )


def _type_name(value_type: object) -> str:
    return value_type.name if isinstance(value_type, ValueType) else "nothing"
