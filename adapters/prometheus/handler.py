"""The prometheus handler: metric instances recorded into the shared exporter's series.

Everything a request needs is worked out at build time, per instance FQN (`_Route`): the family to
record in, the dimension keys in label order, the formatter of each dimension that is not text already,
the value converter for the value's inferred type, and the update (add, set, observe). handle_metric
then does dictionary lookups and arithmetic, under the exporter's lock (the HTTP thread reads the series).

An instance that cannot be recorded (a value that is not a number, a missing dimension, a COUNTER going
down) is skipped and counted in `skipped`; the first skip of each instance and reason is logged.
"""

from __future__ import annotations

import itertools
import operator
from bisect import bisect_left
from collections.abc import Callable, Mapping
from typing import Any

from mixerd.adapter import Env, InstanceInfo, MetricInstance

from . import exporter as shared
from .convert import (
    LabelFormatter,
    Unconvertible,
    ValueConverter,
    format_label,
    label_formatter_for,
    to_float,
    value_converter_for,
)
from .naming import MetricDef, safe_name
from .params import Kind, MetricInfo, Params

_NS = 1_000_000_000
_tokens = itertools.count(1)

Record = Callable[[dict[tuple[str, ...], list[Any]], tuple[str, ...], float, int], None]


def _add(series: dict[tuple[str, ...], list[Any]], key: tuple[str, ...], value: float, now: int) -> None:
    if value < 0:
        raise Unconvertible(f"a COUNTER cannot go down (value {value})")
    s = series.get(key)
    if s is None:
        series[key] = [value, now]
    else:
        s[0] += value
        s[1] = now


def _set(series: dict[tuple[str, ...], list[Any]], key: tuple[str, ...], value: float, now: int) -> None:
    s = series.get(key)
    if s is None:
        series[key] = [value, now]
    else:
        s[0] = value
        s[1] = now


def _observer(bounds: tuple[float, ...]) -> Record:
    inf = len(bounds)  # the index of the +Inf bucket

    def observe(
        series: dict[tuple[str, ...], list[Any]], key: tuple[str, ...], value: float, now: int
    ) -> None:
        s = series.get(key)
        if s is None:
            s = series[key] = [[0] * (inf + 1), 0.0, now]
        # `le` buckets: the first bound >= value; NaN compares false with everything and goes to +Inf
        s[0][bisect_left(bounds, value) if value == value else inf] += 1
        s[1] += value
        s[2] = now

    return observe


def _getter(keys: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """dimensions -> their values in label order, as a tuple (KeyError when one is missing)."""
    if len(keys) >= 2:
        return operator.itemgetter(*keys)  # type: ignore[return-value]
    if len(keys) == 1:
        (only,) = keys
        return lambda dimensions: (dimensions[only],)
    return lambda dimensions: ()


class _Route:
    """What recording one instance takes, worked out once."""

    __slots__ = ("conversions", "convert", "dimension_keys", "getter", "record", "series")

    def __init__(
        self, definition: MetricDef, family: shared.Family, info: MetricInfo, instance: InstanceInfo | None
    ):
        types = instance.types if instance is not None else {}
        dimension_types = types.get("dimensions") or {}
        by_label = {safe_name(key): key for key in dimension_types}
        # The dimension that feeds each label (validate made sure each has exactly one).
        self.dimension_keys = tuple(by_label.get(safe_name(label), label) for label in info.label_names)
        self.getter = _getter(self.dimension_keys)
        formatters = (label_formatter_for(dimension_types.get(key)) for key in self.dimension_keys)
        self.conversions: tuple[tuple[int, LabelFormatter], ...] = tuple(
            (i, f) for i, f in enumerate(formatters) if f is not None
        )
        self.convert: ValueConverter = value_converter_for(types.get("value"))
        self.series = family.series
        kind = definition.kind
        self.record: Record = (
            _add if kind == Kind.COUNTER else _set if kind == Kind.GAUGE else _observer(definition.bounds)
        )


class PrometheusHandler:
    def __init__(self, env: Env, exporter: shared.Exporter) -> None:
        params: Params = env.params
        self._env = env
        self._clock = env.clock
        self._exporter = exporter
        self._lock = exporter.lock
        self._token = next(_tokens)
        self._closed = False
        self.skipped: dict[str, int] = {}  # instance FQN -> instances skipped
        self._logged: set[tuple[str, str]] = set()
        self._families: dict[str, shared.Family] = {}
        self._routes: dict[str, _Route] = {}
        policy = params.metrics_expiration_policy
        self._expiry = policy.metrics_expiry_duration if policy is not None else 0
        try:
            for info in params.metrics:
                definition = MetricDef.of(info)
                family = self._families.get(definition.name)
                if family is None:
                    family = exporter.define(definition, self._token, env.handler, env.logger)
                    self._families[definition.name] = family
                instance = env.instances.get(info.instance_name)
                self._routes[info.instance_name] = _Route(definition, family, info, instance)
        except BaseException:
            exporter.forget(self._token, self._families.values())
            raise

    def handle_metric(self, instances: list[MetricInstance]) -> None:
        now = self._clock()
        routes = self._routes
        with self._lock:
            for instance in instances:
                route = routes.get(instance.name)
                if route is None:
                    self._skip(instance.name, "unknown", "no metric is configured for it")
                    continue
                try:
                    key = route.getter(instance.dimensions)
                    if route.conversions:
                        values = list(key)
                        for i, fmt in route.conversions:
                            values[i] = fmt(values[i])
                        key = tuple(values)
                except KeyError as e:
                    self._skip(instance.name, "dimension", f"it has no dimension {e.args[0]!r}")
                    continue
                except Exception:  # a value of another type than inferred: format it by what it is
                    key = tuple(format_label(v) for v in route.getter(instance.dimensions))
                try:
                    try:
                        value = route.convert(instance.value)
                    except Exception:  # not of the inferred type: convert it by what it is (or explain)
                        value = to_float(instance.value)
                    route.record(route.series, key, value, now)
                except Unconvertible as e:
                    self._skip(instance.name, "value", str(e))

    def _skip(self, instance: str, kind: str, reason: str) -> None:
        self.skipped[instance] = self.skipped.get(instance, 0) + 1
        if (instance, kind) in self._logged:
            return
        self._logged.add((instance, kind))
        log = self._env.logger.info if kind == "unknown" else self._env.logger.warning
        log(
            "%s: skipped instance %s: %s (logged once; later ones are only counted)",
            self._env.handler,
            instance,
            reason,
        )

    def expire(self) -> int:
        """Remove every series not updated for the expiry duration; how many went."""
        if not self._expiry:
            return 0
        cutoff = self._clock() - self._expiry
        removed = 0
        with self._lock:
            for family in self._families.values():
                stale = [key for key, s in family.series.items() if s[-1] <= cutoff]
                for key in stale:
                    del family.series[key]
                removed += len(stale)
        return removed

    async def close(self) -> None:
        """Stop exporting metrics no other handler uses; the last prometheus handler stops the endpoint."""
        if self._closed:
            return
        self._closed = True
        self._exporter.forget(self._token, self._families.values())
        await shared.release(self._exporter, self._env.logger)


async def build(env: Env) -> PrometheusHandler:
    settings = env.settings
    exporter = await shared.acquire(settings.address, settings.prometheus_port, env.logger)
    try:
        handler = PrometheusHandler(env, exporter)
    except BaseException:
        await shared.release(exporter, env.logger)
        raise
    policy = env.params.metrics_expiration_policy
    if policy is not None:
        env.every(policy.check_interval / _NS, handler.expire, name=f"{env.handler} prometheus expiry")
    return handler
