"""validate(params, instances): the config errors that need more than the params' types.

- every instance rules send the handler has a MetricInfo, and no instance has two;
- the instance's dimension keys are the metric's label names (compared after Mixer's sanitising, as
  Mixer's Prometheus client compared them): in Mixer a mismatch panicked at request time, here it is a
  config error at load time;
- exported names and label names are valid Prometheus names; a DISTRIBUTION does not use `le`;
- one exported name is not defined twice differently (kind, labels, buckets or description).

Pure: no network, no files.
"""

from __future__ import annotations

from collections.abc import Mapping

from mixerd.adapter import InstanceInfo, Problem

from .naming import DEFAULT_NAMESPACE, LABEL_NAME, METRIC_NAME, MetricDef, safe_name
from .params import Kind, MetricInfo, Params


def validate(params: Params, instances: Mapping[str, InstanceInfo]) -> list[Problem]:
    problems: list[Problem] = []
    by_instance: dict[str, int] = {}
    by_name: dict[str, tuple[int, MetricDef]] = {}
    for i, info in enumerate(params.metrics):
        path = f".metrics[{i}]"
        definition = MetricDef.of(info)
        problems.extend(_names(path, info, definition))
        if info.instance_name in by_instance:
            first = by_instance[info.instance_name]
            reason = f"instance {info.instance_name!r} already has a metric (metrics[{first}]); give it one"
            problems.append((f"{path}.instanceName", reason))
        else:
            by_instance[info.instance_name] = i
        if definition.name in by_name:
            first, other = by_name[definition.name]
            differences = definition.differences(other)
            if differences:
                reason = (
                    f"{definition.name} is also defined by metrics[{first}], with another "
                    f"{', '.join(differences)}; one exported name is one metric"
                )
                problems.append((path, reason))
        else:
            by_name[definition.name] = (i, definition)
        instance = instances.get(info.instance_name)
        if instance is not None:
            problems.extend(_dimensions(path, info, instance))
    for name in sorted(instances):
        if name not in by_instance:
            reason = f"no metric is configured for instance {name!r}, which rules send to this handler"
            problems.append((".metrics", reason))
    return problems


def _names(path: str, info: MetricInfo, definition: MetricDef) -> list[Problem]:
    problems: list[Problem] = []
    if not METRIC_NAME.fullmatch(definition.name):
        namespace = safe_name(info.namespace) if info.namespace else DEFAULT_NAMESPACE
        field = (
            ".namespace"
            if not METRIC_NAME.fullmatch(namespace)
            else ".name"
            if info.name
            else ".instanceName"
        )
        reason = f"the exported name {definition.name!r} is not a valid Prometheus metric name"
        problems.append((path + field, reason))
    seen: dict[str, int] = {}
    for j, (raw, label) in enumerate(zip(info.label_names, definition.label_names, strict=True)):
        where = f"{path}.labelNames[{j}]"
        if not LABEL_NAME.fullmatch(label) or label.startswith("__"):
            problems.append((where, f"{raw!r} is not a valid Prometheus label name (as {label!r})"))
        elif label == "le" and info.kind == Kind.DISTRIBUTION:
            problems.append((where, "'le' is the bucket label of a DISTRIBUTION; use another name"))
        if label in seen:
            problems.append((where, f"{raw!r} names the label {label!r} again (labelNames[{seen[label]}])"))
        else:
            seen[label] = j
    return problems


def _dimensions(path: str, info: MetricInfo, instance: InstanceInfo) -> list[Problem]:
    """The instance's dimensions must be the label names (each sanitised, as Mixer did)."""
    dimensions = instance.types.get("dimensions") or {}
    by_label: dict[str, str] = {}
    problems: list[Problem] = []
    for key in dimensions:
        label = safe_name(key)
        if label in by_label:
            first = by_label[label]
            reason = (
                f"dimensions {first!r} and {key!r} of instance {instance.name!r} both make label {label!r}"
            )
            problems.append((f"{path}.labelNames", reason))
        by_label.setdefault(label, key)
    labels = {safe_name(name) for name in info.label_names}
    missing = [name for name in info.label_names if safe_name(name) not in by_label]
    extra = [key for label, key in by_label.items() if label not in labels]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"no dimension for {_listed('label', missing)}")
        if extra:
            parts.append(f"no label for {_listed('dimension', sorted(extra))}")
        reason = f"must be the dimensions of instance {instance.name!r}: {'; '.join(parts)}"
        problems.append((f"{path}.labelNames", reason))
    return problems


def _listed(what: str, names: list[str]) -> str:
    return f"{what}{'s' if len(names) > 1 else ''} {', '.join(names)}"
