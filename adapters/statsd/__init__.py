"""statsd: sends metric instances to a statsd daemon over UDP, as Mixer's statsd adapter did (MIXER.md 7.2).

Each metric instance routed to a handler needs an entry in `metrics` (by instance FQN) giving its statsd
type (COUNTER, GAUGE or DISTRIBUTION) and a name template over its dimensions. Lines are batched into
datagrams of at most `flushBytes`, sent at least every `flushDuration`, in the background: a statsd that
is down or slow never slows a Report. See docs/adapters/statsd.md.
"""

from __future__ import annotations

from collections.abc import Mapping

from mixerd.adapter import AdapterInfo, InstanceInfo, Problem, hookimpl

from .handler import StatsdHandler, build
from .params import MetricInfo, MetricType, Params
from .template import parse

__all__ = ["MetricInfo", "MetricType", "Params", "StatsdHandler", "build", "mixerd_adapter_info", "validate"]


def validate(params: Params, instances: Mapping[str, InstanceInfo]) -> list[Problem]:
    """Every metric instance that rules send to the handler has a `metrics` entry, and its name
    template names only dimensions the instance has. Pure: no network."""
    problems: list[Problem] = []
    for name, info in sorted(instances.items()):
        if info.template != "metric":
            continue
        metric = params.metrics.get(name)
        if metric is None:
            configured = ", ".join(sorted(params.metrics)) or "none"
            problems.append((".metrics", f"no entry for metric instance {name!r} (configured: {configured})"))
            continue
        dimensions = info.types.get("dimensions") or {}
        for reference in parse(metric.name_template).references:
            if reference not in dimensions:
                known = ", ".join(sorted(dimensions)) or "none"
                problems.append(
                    (
                        f".metrics[{name!r}].nameTemplate",
                        f"{{{{.{reference}}}}}: instance {name!r} has no dimension {reference!r} "
                        f"(its dimensions: {known})",
                    )
                )
    return problems


@hookimpl
def mixerd_adapter_info() -> AdapterInfo:
    return AdapterInfo(
        name="statsd",
        templates=("metric",),
        params=Params,
        build=build,
        validate=validate,
        description="Sends metrics to a statsd daemon over UDP (counters, gauges, timings)",
    )
