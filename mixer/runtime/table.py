"""The routing table: for each namespace and variety, the destinations a request goes to (MIXER.md 5.5).

A destination is one handler x one template with its instance groups (a rule's match and the instances
that rule sends there). A namespace's destinations are the default namespace's followed by its own;
a request picks its namespace from `context.reporter.kind` (inbound or absent: destination.namespace,
outbound: source.namespace). The table is immutable once built; a config change builds a new one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..adapter import HANDLE_QUOTAS, Variety
from ..attribute import AttributeBag
from ..config.instances import InstanceBuilder
from ..config.snapshot import HeaderOperationConfig, RuleConfig, Snapshot
from ..templates import Template
from .handlers import BuiltHandler
from .ratelimit import RateLimitRoute, bind_rate_limits

Match = Callable[[AttributeBag], Any] | None  # None: always true


@dataclass(slots=True)
class Group:
    """The instances one rule sends to a destination, and the rule's match. `counted`: this group's
    evaluation counts in the rule's metrics (the first of the rule's groups in its dispatch step)."""

    rule: str
    match: Match
    instances: list[InstanceBuilder] = field(default_factory=list)
    counted: bool = True


@dataclass(slots=True)
class Destination:
    handler: BuiltHandler
    template: Template
    method: Callable[..., Any]
    is_async: bool
    groups: list[Group] = field(default_factory=list)
    # QUOTA: the handler's optional `handle_quotas` (all of one Check's quotas in one call), and whether
    # to await it; None when it has none.
    batch: tuple[Callable[..., Any], bool] | None = None
    key: tuple[str, str] = ("", "")  # (handler FQN, template): its metrics' labels

    def __post_init__(self) -> None:
        self.key = (self.handler.fqn, self.template.name)


@dataclass(frozen=True, slots=True)
class QuotaRoute:
    destination: Destination
    rule: str
    match: Match
    instance: InstanceBuilder


@dataclass(frozen=True, slots=True)
class HeaderRule:
    rule: str
    match: Match
    request: tuple[HeaderOperationConfig, ...]
    response: tuple[HeaderOperationConfig, ...]
    counted: bool = True  # False when the check step already counts the rule


@dataclass(slots=True)
class Routes:
    """Everything a request of one namespace can be routed to."""

    check: list[Destination] = field(default_factory=list)
    report: list[Destination] = field(default_factory=list)
    generators: list[Destination] = field(default_factory=list)
    quotas: dict[str, list[QuotaRoute]] = field(default_factory=dict)  # by lower-case instance short name
    header_rules: list[HeaderRule] = field(default_factory=list)


def _match(rule: RuleConfig) -> Match:
    return None if rule.match.always_true else rule.match.evaluate


def _routes(rules: list[RuleConfig], snapshot: Snapshot, handlers: Mapping[str, BuiltHandler]) -> Routes:
    routes = Routes()
    destinations: dict[tuple[str, str], Destination] = {}
    by_variety = {
        Variety.CHECK: routes.check,
        Variety.CHECK_WITH_OUTPUT: routes.check,
        Variety.REPORT: routes.report,
        Variety.ATTRIBUTE_GENERATOR: routes.generators,
    }
    for rule in rules:
        match = _match(rule)
        if rule.request_header_operations or rule.response_header_operations:
            routes.header_rules.append(
                HeaderRule(rule.fqn, match, rule.request_header_operations, rule.response_header_operations)
            )
        for action in rule.actions:
            handler = handlers[action.handler]
            for instance_fqn in action.instances:
                builder = snapshot.instances[instance_fqn]
                template = builder.template
                key = (action.handler, template.name)
                dest = destinations.get(key)
                if dest is None:
                    method, is_async = handler.method(template.name)
                    dest = destinations[key] = Destination(handler, template, method, is_async)
                    if template.variety is Variety.QUOTA:
                        dest.batch = handler.batch_method(HANDLE_QUOTAS)
                    if template.variety is not Variety.QUOTA:
                        by_variety[template.variety].append(dest)
                if template.variety is Variety.QUOTA:
                    short = instance_fqn.split(".", 1)[0].lower()
                    routes.quotas.setdefault(short, []).append(QuotaRoute(dest, rule.fqn, match, builder))
                    continue
                if dest.groups and dest.groups[-1].rule == rule.fqn:
                    dest.groups[-1].instances.append(builder)
                else:
                    dest.groups.append(Group(rule.fqn, match, [builder]))
    _count_once(routes)
    return routes


def _count_once(routes: Routes) -> None:
    """Mark which evaluations of a rule count in its metrics: one per dispatch step, however many
    handlers the rule sends to; the headers step counts only rules the check step does not."""
    for step in (routes.check, routes.report, routes.generators):
        seen: set[str] = set()
        for dest in step:
            for group in dest.groups:
                group.counted = group.rule not in seen
                seen.add(group.rule)
    in_check = {group.rule for dest in routes.check for group in dest.groups}
    routes.header_rules = [
        replace(rule, counted=False) if rule.rule in in_check else rule for rule in routes.header_rules
    ]


class RoutingTable:
    """One config's routes, with the handlers they call; `inflight` counts requests using it."""

    def __init__(self, snapshot: Snapshot, handlers: Mapping[str, BuiltHandler], generation: int = 0) -> None:
        self.snapshot = snapshot
        self.handlers = dict(handlers)
        self.generation = generation
        self.inflight = 0
        by_namespace: dict[str, list[RuleConfig]] = {}  # grouped once: thousands of namespaces happen
        for rule in snapshot.rules:
            by_namespace.setdefault(rule.namespace, []).append(rule)
        default_rules = by_namespace.pop(snapshot.default_namespace, [])
        self.default = _routes(default_rules, snapshot, handlers)
        self.by_namespace = {
            ns: _routes(default_rules + by_namespace[ns], snapshot, handlers) for ns in sorted(by_namespace)
        }
        # Envoy's rate limit service: each domain with the handler that counts it.
        self.rate_limits: dict[str, RateLimitRoute] = bind_rate_limits(snapshot.rate_limit_domains, handlers)

    def parts(self) -> list[object]:
        """Every rule, instance builder and route of this table's config: holding these while the table
        goes, then letting them go one by one, frees a replaced config in small steps (freed at once, a
        5000-rule config held the GIL for 100-175 ms)."""
        out: list[object] = [*self.snapshot.rules, *self.snapshot.instances.values()]
        for routes in (self.default, *self.by_namespace.values()):
            out.append(routes)
            for destinations in (routes.check, routes.report, routes.generators):
                for destination in destinations:
                    out.append(destination)
                    out.extend(destination.groups)
            for quota_routes in routes.quotas.values():
                out.extend(quota_routes)
            out.extend(routes.header_rules)
        return out

    def routes(self, bag: AttributeBag) -> Routes:
        """The routes of the bag's namespace. The namespace attributes are only read (and so only become
        part of the proxy's cache key) when some namespace other than the default has rules."""
        if not self.by_namespace:
            return self.default
        kind = bag.get("context.reporter.kind")
        if kind is None or kind == "inbound":
            namespace = bag.get("destination.namespace")
        elif kind == "outbound":
            namespace = bag.get("source.namespace")
        else:
            namespace = None
        return self.by_namespace.get(namespace, self.default) if namespace else self.default


class TableSource(Protocol):
    """Where requests read the routing table in force (the Runtime)."""

    @property
    def table(self) -> RoutingTable: ...
