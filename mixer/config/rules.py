"""Rules: the match, the actions (handler and instance references) and the header operations (MIXER.md 5.2).

References are resolved the way Mixer did (resources.resolve_reference), against every handler and
instance resource, valid or not, so that a broken handler is reported once, where it is defined, and
not again in each rule that names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..adapter import InstanceInfo
from ..attribute.values import ValueType
from .fields import Problem, read_fields, type_name
from .handlers import CompiledHandler
from .instances import ExpressionCache, InstanceBuilder, compile_typed
from .model import HEADER_OPERATIONS, ActionConfig, HeaderOperationConfig, RuleConfig
from .resources import HANDLER, INSTANCE, Resource, resolve_reference, unresolved_reason

_RULE_FIELDS = ("match", "actions", "request_header_operations", "response_header_operations", "sampling")
_ACTION_FIELDS = ("handler", "instances", "name")
_HEADER_FIELDS = ("name", "values", "operation")


@dataclass
class RuleContext:
    """What rules are compiled against; `routed` collects, per handler FQN, the instances sent to it."""

    cache: ExpressionCache
    handler_resources: Mapping[str, Resource]  # every handler-role resource, by FQN
    handlers: Mapping[str, CompiledHandler]  # the valid ones
    instance_resources: Mapping[str, Resource]
    instances: Mapping[str, InstanceBuilder]  # the valid ones
    routed: dict[str, dict[str, InstanceInfo]] = field(default_factory=dict)


def compile_rule(r: Resource, ctx: RuleContext, problems: list[Problem]) -> RuleConfig | None:
    """The rule, or None with every problem in `problems`."""
    before = len(problems)
    spec = read_fields(r.spec, _RULE_FIELDS, ".spec", problems)
    raw_match = spec.get("match", "")
    match = compile_typed(
        ctx.cache, raw_match if raw_match != "" else "true", ValueType.BOOL, spec.path("match"), problems
    )
    raw_actions = spec.get("actions", [])
    actions = []
    if not isinstance(raw_actions, list):
        problems.append((spec.path("actions"), f"expected a list of actions, got {type_name(raw_actions)}"))
        raw_actions = []
    for i, raw in enumerate(raw_actions):
        action = _action(r, f"{spec.path('actions')}[{i}]", raw, ctx, problems)
        if action is not None:
            actions.append(action)
    request_ops = _header_ops(
        spec.get("request_header_operations"), spec.path("request_header_operations"), ctx, problems
    )
    response_ops = _header_ops(
        spec.get("response_header_operations"), spec.path("response_header_operations"), ctx, problems
    )
    if (
        spec.get("actions", []) == []
        and "request_header_operations" not in spec
        and "response_header_operations" not in spec
    ):
        problems.append((spec.path("actions"), "a rule needs at least one action or header operation"))
    if len(problems) > before or match is None:
        return None
    return RuleConfig(r.fqn, r.namespace, match, tuple(actions), request_ops, response_ops)


def _action(
    r: Resource, path: str, raw: Any, ctx: RuleContext, problems: list[Problem]
) -> ActionConfig | None:
    if not isinstance(raw, Mapping):
        problems.append((path, f"expected a mapping with handler and instances, got {type_name(raw)}"))
        return None
    fields = read_fields(raw, _ACTION_FIELDS, path, problems)
    handler_fqn = _reference(
        fields.get("handler"), HANDLER, r.namespace, ctx.handler_resources, fields.path("handler"), problems
    )
    handler = ctx.handlers.get(handler_fqn) if handler_fqn else None
    name = fields.get("name", "")
    if not isinstance(name, str):
        problems.append((fields.path("name"), f"expected a string, got {type_name(name)}"))
    refs = fields.get("instances", [])
    if not isinstance(refs, list) or not refs:
        got = "an empty list" if refs == [] else type_name(refs)
        problems.append((fields.path("instances"), f"expected a non-empty list of instance names, got {got}"))
        refs = []
    resolved: list[str] = []
    for j, ref in enumerate(refs):
        here = f"{fields.path('instances')}[{j}]"
        fqn = _reference(ref, INSTANCE, r.namespace, ctx.instance_resources, here, problems)
        if fqn is None:
            continue
        if fqn in resolved:
            problems.append((here, f"instance {fqn!r} is named twice in this action"))
            continue
        resolved.append(fqn)
        builder = ctx.instances.get(fqn)
        if builder is None or handler is None:
            continue  # its own problems are reported where it is defined
        adapter = handler.adapter
        if builder.template.name not in adapter.templates:
            problems.append(
                (
                    here,
                    f"handler {handler_fqn!r} (adapter {adapter.name}) does not support template "
                    f"{builder.template.name!r} of instance {fqn!r}; "
                    f"it supports {', '.join(adapter.templates)}",
                )
            )
            continue
        ctx.routed.setdefault(handler.resource.fqn, {})[fqn] = builder.info
    if handler_fqn is None:
        return None
    return ActionConfig(handler_fqn, tuple(resolved), name if isinstance(name, str) else "")


def _reference(
    ref: Any, kind: str, namespace: str, known: Mapping[str, Resource], path: str, problems: list[Problem]
) -> str | None:
    if ref is None or ref == "":
        problems.append((path, f"missing: name the {kind}"))
        return None
    if not isinstance(ref, str):
        problems.append((path, f"expected a {kind} name, got {type_name(ref)}"))
        return None
    fqn = resolve_reference(ref, kind, namespace, known)
    if fqn is None:
        problems.append((path, unresolved_reason(ref, kind, namespace, known)))
    return fqn


def _header_ops(
    raw: Any, path: str, ctx: RuleContext, problems: list[Problem]
) -> tuple[HeaderOperationConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append((path, f"expected a list of header operations, got {type_name(raw)}"))
        return ()
    out = []
    for i, op in enumerate(raw):
        here = f"{path}[{i}]"
        if not isinstance(op, Mapping):
            problems.append(
                (here, f"expected a mapping with name, values and operation, got {type_name(op)}")
            )
            continue
        before = len(problems)
        fields = read_fields(op, _HEADER_FIELDS, here, problems)
        name = fields.get("name")
        if not isinstance(name, str) or not name:
            problems.append(
                (
                    fields.path("name"),
                    "missing: the header name" if not name else f"expected a string, got {type_name(name)}",
                )
            )
        operation = fields.get("operation", "REPLACE")
        code = _operation_code(operation)
        if code is None:
            problems.append(
                (fields.path("operation"), f"{operation!r} is not one of REPLACE, REMOVE, APPEND")
            )
        values = fields.get("values", [])
        if not isinstance(values, list):
            problems.append(
                (fields.path("values"), f"expected a list of expressions, got {type_name(values)}")
            )
            values = []
        compiled = [
            compile_typed(ctx.cache, v, ValueType.STRING, f"{fields.path('values')}[{j}]", problems)
            for j, v in enumerate(values)
        ]
        if len(problems) == before and code is not None and isinstance(name, str):
            out.append(HeaderOperationConfig(name.lower(), tuple(c for c in compiled if c is not None), code))
    return tuple(out)


def _operation_code(operation: Any) -> int | None:
    if isinstance(operation, str):
        return HEADER_OPERATIONS.get(operation)
    if (
        isinstance(operation, int)
        and not isinstance(operation, bool)
        and operation in HEADER_OPERATIONS.values()
    ):
        return operation
    return None
