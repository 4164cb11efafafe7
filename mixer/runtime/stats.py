"""The runtime's self metrics: config loads, handler lifecycle, rules and dispatches (MIXER.md 11.3).

Per rule: how often its match held and how often it could not be evaluated, once per dispatch step that
evaluates it (check, quota, headers, report, generation; a rule sending to several handlers counts once
in a step), kept across reloads for the rules still in force. Per handler and template: calls by
outcome, and their duration (`mixerd_adapter_dispatch_duration_seconds`: a sync method's run, an async
one's time to answer, a quota batch's whole call). Shared quota backends (`backend_state()`) publish
whether they answer and how many answers their fail policy gave instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..adapter import BACKEND_STATE, DELIVERY_STATS, GENERATION_STATS, SPAN_COUNTS
from ..histogram import Histograms


class RuntimeStats:
    """Plain counters bumped on the event loop; read when /metrics is scraped."""

    def __init__(self) -> None:
        self.config_loads = 0
        self.config_rejections = 0
        self.config_errors = 0  # problems in the last rejected config
        self.resources: dict[str, int] = {}  # by kind, of the config in force
        self.handler_builds = 0
        self.handler_build_failures = 0
        self.handler_reuses = 0
        self.handler_closes = 0
        self.handler_close_failures = 0
        self.dispatches: Counter[tuple[str, str, str]] = Counter()  # (handler, template, ok|error)
        self.match_errors = 0
        self.instance_errors = 0
        self.generator_failures = 0
        self.rule_matches: Counter[str] = Counter()  # by rule FQN
        self.rule_errors: Counter[str] = Counter()
        self.handler_seconds = Histograms()  # by (handler, template)

    def keep_only(self, rules: set[str], handlers: set[str]) -> None:
        """Forget the counts of rules and the durations of handlers no longer in force (a config change
        removed them), so their series leave /metrics."""
        for counts in (self.rule_matches, self.rule_errors):
            for gone in counts.keys() - rules:
                del counts[gone]
        durations = self.handler_seconds.by_labels
        for key in [key for key in durations if key[0] not in handlers]:  # type: ignore[index]
            del durations[key]


class RuntimeCollector(Collector):
    def __init__(self, stats: RuntimeStats, handlers: Callable[[], Mapping[str, Any]] | None = None) -> None:
        self._stats = stats
        self._handlers = handlers  # the built handlers in force, by FQN (for their delivery counters)

    def collect(self) -> Iterator[Metric]:
        s = self._stats
        simple = [
            ("mixerd_config_loads", "Configs accepted and put in force.", s.config_loads),
            (
                "mixerd_config_rejections",
                "Config changes rejected whole (the previous config kept serving).",
                s.config_rejections,
            ),
            ("mixerd_handler_builds", "Handlers built.", s.handler_builds),
            (
                "mixerd_handler_build_failures",
                "Handler builds that failed (the handler is unavailable).",
                s.handler_build_failures,
            ),
            ("mixerd_handler_reuses", "Handlers kept across a config change.", s.handler_reuses),
            (
                "mixerd_handler_closes",
                "Handlers closed after a config change or at shutdown.",
                s.handler_closes,
            ),
            ("mixerd_handler_close_failures", "Handler closes that raised.", s.handler_close_failures),
            (
                "mixerd_rule_match_errors",
                "Rule matches that failed to evaluate (counted as false).",
                s.match_errors,
            ),
            (
                "mixerd_instance_errors",
                "Instances that could not be built from a request.",
                s.instance_errors,
            ),
            (
                "mixerd_attribute_generation_failures",
                "Attribute generator runs that failed.",
                s.generator_failures,
            ),
        ]
        for name, doc, value in simple:
            yield CounterMetricFamily(name, doc, value=value)
        yield GaugeMetricFamily(
            "mixerd_config_last_rejection_errors",
            "Problems found in the last rejected config.",
            value=s.config_errors,
        )
        resources = GaugeMetricFamily(
            "mixerd_config_resources", "Resources in the config in force, by kind.", labels=["kind"]
        )
        for kind, count in sorted(s.resources.items()):
            resources.add_metric([kind], count)
        yield resources
        dispatches = CounterMetricFamily(
            "mixerd_adapter_dispatches",
            "Calls to handlers, by handler, template and outcome.",
            labels=["handler", "template", "outcome"],
        )
        for (handler, template, outcome), count in sorted(s.dispatches.items()):
            dispatches.add_metric([handler, template, outcome], count)
        yield dispatches
        yield s.handler_seconds.family(
            "mixerd_adapter_dispatch_duration_seconds",
            "Seconds handlers took to answer a call, by handler and template.",
            ["handler", "template"],
        )
        yield _by_rule("mixerd_rule_matches", "Requests a rule's match held for, by rule.", s.rule_matches)
        yield _by_rule(
            "mixerd_rule_errors",
            "Requests a rule's match could not be evaluated for (counted as false), by rule.",
            s.rule_errors,
        )
        yield from self._delivery()
        yield from self._backends()

    def _backends(self) -> Iterator[Metric]:
        """Shared quota backends (`backend_state()`): up or not, and the answers of the fail policy."""
        up = GaugeMetricFamily(
            "mixerd_quota_backend_up",
            "1 while a quota handler's shared backend (Redis) answers, 0 while its fail policy answers.",
            labels=["handler", "adapter"],
        )
        answers = CounterMetricFamily(
            "mixerd_quota_fail_policy_answers",
            "Quota and rate limit answers a handler's fail policy gave because its backend did not answer.",
            labels=["handler", "adapter", "policy"],
        )
        for fqn, adapter, state in self._asked(BACKEND_STATE, self._sorted_handlers()):
            up.add_metric([fqn, adapter], 1 if state.get("connected") else 0)
            if "fail_policy_answers" in state:
                policy = str(state.get("fail_policy", ""))
                answers.add_metric([fqn, adapter, policy], state["fail_policy_answers"])
        yield up
        yield answers

    def _delivery(self) -> Iterator[Metric]:
        """Handlers' own counters, per handler and adapter: telemetry queues (`delivery_stats()`:
        queued, sent, dropped, failed; DESIGN.md decision 6), tracing (`span_counts()`: untraced,
        sampled_out, invalid) and attribute generators (`generation_stats()`: hits, misses,
        skipped, sync_failures)."""
        handlers = self._sorted_handlers()
        for method, prefix, docs in _HANDLER_COUNTERS:
            families = {
                key: CounterMetricFamily(f"{prefix}_{key}", doc, labels=["handler", "adapter"])
                for key, doc in docs.items()
            }
            for fqn, adapter, stats in self._asked(method, handlers):
                for key, family in families.items():
                    if key in stats:  # only what the handler counts; never an invented 0
                        family.add_metric([fqn, adapter], stats[key])
            yield from families.values()

    def _sorted_handlers(self) -> list[tuple[str, Any]]:
        return sorted(self._handlers().items()) if self._handlers is not None else []

    @staticmethod
    def _asked(method: str, handlers: list[tuple[str, Any]]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
        """(handler FQN, adapter, answer) of each handler that has the optional `method`."""
        for fqn, built in handlers:
            ask = getattr(built.handler, method, None)
            if ask is None:
                continue
            try:
                answer = ask()
            except Exception:
                continue  # a scrape must not fail because of one handler
            yield fqn, built.config.adapter.name, answer


def _by_rule(name: str, doc: str, counts: Counter[str]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=["rule"])
    for rule, count in sorted(counts.items()):
        family.add_metric([rule], count)
    return family


_HANDLER_COUNTERS = (
    (
        DELIVERY_STATS,
        "mixerd_adapter_delivery",
        {
            "queued": "Items telemetry handlers accepted into their delivery queues.",
            "sent": "Items telemetry handlers delivered to their backends.",
            "dropped": "Items telemetry handlers dropped because their queue was full or closing.",
            "failed": "Delivery attempts that failed (and were retried).",
        },
    ),
    (
        SPAN_COUNTS,
        "mixerd_adapter_spans",
        {
            "untraced": "Trace span instances without trace or span ids (the request was not traced).",
            "sampled_out": "Trace span instances left out by the handler's sampling.",
            "invalid": "Trace span instances with malformed ids or values, skipped.",
        },
    ),
    (
        GENERATION_STATS,
        "mixerd_adapter_generation",
        {
            "hits": "Attribute-generator lookups that found what they looked for.",
            "misses": "Attribute-generator lookups that found nothing.",
            "skipped": "Attribute-generator lookups skipped (generator unavailable or not yet synced).",
            "sync_failures": "Failed attempts of attribute generators to sync their caches.",
        },
    ),
)
