"""A config folder validated and compiled into a `Snapshot`, or rejected whole with every problem.

Order of work: attribute manifests (the types every expression is checked against), handlers (adapter
and params), instances (template and expressions), rules (match, references, header operations), and
finally each used handler's own `validate` with the instances rules send it. Any problem rejects the
config (DESIGN.md decision 5); Mixer dropped bad pieces one by one instead (MIXER.md 5.6).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..adapter import AdapterInfo, InstanceInfo, Variety
from ..attribute import BUILTIN_MANIFEST, AttributeManifest, ManifestError
from ..attribute.manifest import AttributeInfo
from ..attribute.values import ValueType
from ..lang import CompiledExpression
from ..params import ParamsError, params_to_dict, read_params
from ..templates import TEMPLATES, Template
from .errors import ConfigError, ConfigRejected
from .instances import ExpressionCache, InstanceBuilder, compile_instance, compile_typed
from .loader import Document, read_documents
from .resources import HANDLER, INSTANCE, MANIFEST, RULE, Resource, parse_resources, resolve_reference

DEFAULT_NAMESPACE = "istio-system"

#: HeaderOperation.Operation (MIXER.md 1.4)
HEADER_OPERATIONS = {"REPLACE": 0, "REMOVE": 1, "APPEND": 2}


@dataclass(frozen=True)
class HandlerConfig:
    fqn: str
    adapter: AdapterInfo
    params: Any
    instances: Mapping[str, InstanceInfo]  # what rules send it, by instance FQN
    key: str  # equal keys: the same adapter, params and instances, so a built handler can be reused


@dataclass(frozen=True)
class ActionConfig:
    handler: str
    instances: tuple[str, ...]
    name: str = ""


@dataclass(frozen=True)
class HeaderOperationConfig:
    name: str
    values: tuple[CompiledExpression, ...]
    operation: int


@dataclass(frozen=True)
class RuleConfig:
    fqn: str
    namespace: str
    match: CompiledExpression
    actions: tuple[ActionConfig, ...]
    request_header_operations: tuple[HeaderOperationConfig, ...] = ()
    response_header_operations: tuple[HeaderOperationConfig, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """A valid config, compiled: what the routing table is built from."""

    manifest: AttributeManifest
    handlers: Mapping[str, HandlerConfig]  # only the handlers some rule uses
    instances: Mapping[str, InstanceBuilder]
    rules: tuple[RuleConfig, ...]
    default_namespace: str = DEFAULT_NAMESPACE
    resources_by_kind: Mapping[str, int] = field(default_factory=dict)


EMPTY_SNAPSHOT = Snapshot(BUILTIN_MANIFEST, {}, {}, ())


def load_snapshot(
    folder: str | Path, adapters: Mapping[str, AdapterInfo], *, default_namespace: str = DEFAULT_NAMESPACE
) -> Snapshot:
    """The folder's config compiled; ConfigRejected lists every problem."""
    documents, errors = read_documents(Path(folder))
    return compile_snapshot(documents, adapters, default_namespace=default_namespace, errors=errors)


def compile_snapshot(
    documents: list[Document],
    adapters: Mapping[str, AdapterInfo],
    *,
    default_namespace: str = DEFAULT_NAMESPACE,
    errors: list[ConfigError] | None = None,
) -> Snapshot:
    errors = list(errors or [])
    resources = parse_resources(
        documents, default_namespace=default_namespace, adapters=adapters, templates=TEMPLATES, errors=errors
    )
    compiler = _Compiler(adapters, default_namespace, errors)
    snapshot = compiler.run(resources)
    if errors:
        raise ConfigRejected(errors)
    return snapshot


def _spec_get(spec: Mapping[str, Any], snake: str, camel_name: str) -> Any:
    return spec.get(camel_name, spec.get(snake))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class _Compiler:
    def __init__(
        self, adapters: Mapping[str, AdapterInfo], default_namespace: str, errors: list[ConfigError]
    ):
        self.adapters = adapters
        self.default_namespace = default_namespace
        self.errors = errors

    def run(self, resources: list[Resource]) -> Snapshot:
        by_kind: dict[str, list[Resource]] = {RULE: [], INSTANCE: [], HANDLER: [], MANIFEST: []}
        counts: dict[str, int] = {}
        for r in resources:
            role = r.kind if not r.legacy else (HANDLER if r.kind in self.adapters else INSTANCE)
            by_kind[role].append(r)
            counts[r.kind] = counts.get(r.kind, 0) + 1
        manifest = self.manifest(by_kind[MANIFEST])
        cache = ExpressionCache(manifest)
        handlers = {r.fqn: h for r in by_kind[HANDLER] if (h := self.handler(r)) is not None}
        handler_resources = {r.fqn: r for r in by_kind[HANDLER]}
        instance_specs = {r.fqn: r for r in by_kind[INSTANCE]}
        instances = {r.fqn: b for r in by_kind[INSTANCE] if (b := self.instance(r, cache)) is not None}
        rules = tuple(
            rule
            for r in by_kind[RULE]
            if (rule := self.rule(r, cache, handler_resources, handlers, instance_specs, instances))
            is not None
        )
        used = self.used_handlers(rules, handlers, handler_resources, instances, instance_specs)
        return Snapshot(manifest, used, instances, rules, self.default_namespace, counts)

    # -- attribute manifests --------------------------------------------------------------------

    def manifest(self, resources: list[Resource]) -> AttributeManifest:
        manifest = BUILTIN_MANIFEST
        for r in resources:
            unknown = sorted(set(r.spec) - {"attributes", "name", "revision"})
            if unknown:
                self.errors.append(
                    r.error(f".spec.{unknown[0]}", "unknown field (known: name, revision, attributes)")
                )
                continue
            try:
                manifest = manifest.merged(AttributeManifest.from_document({"spec": r.spec}, "\0"))
            except ManifestError as e:
                path, _, reason = str(e).removeprefix("\0: ").partition(": ")
                self.errors.append(r.error(path, reason))
        # Attribute generators' outputs are attributes too, under their template's output prefix.
        generated = {
            t.output_prefix + f.name: AttributeInfo(t.output_prefix + f.name, f.type or ValueType.STRING)
            for t in TEMPLATES.values()
            for f in t.output
        }
        return manifest.merged(AttributeManifest(generated))

    # -- handlers -------------------------------------------------------------------------------

    def handler(self, r: Resource) -> tuple[AdapterInfo, Any, str] | None:
        if r.legacy:
            adapter_name, raw_params, params_path = r.kind, dict(r.spec), ".spec"
        else:
            unknown = sorted(
                set(r.spec)
                - {"compiledAdapter", "compiled_adapter", "params", "name", "adapter", "connection"}
            )
            if unknown:
                self.errors.append(
                    r.error(f".spec.{unknown[0]}", "unknown field (known: compiledAdapter, params)")
                )
                return None
            if r.spec.get("adapter") is not None or r.spec.get("connection") is not None:
                self.errors.append(
                    r.error(
                        ".spec.adapter",
                        "out-of-process adapters are not supported; "
                        "use compiledAdapter with an installed adapter",
                    )
                )
                return None
            adapter_name = _spec_get(r.spec, "compiled_adapter", "compiledAdapter")
            raw_params, params_path = r.spec.get("params"), ".spec.params"
            if not adapter_name:
                self.errors.append(
                    r.error(".spec.compiledAdapter", "missing: name the adapter this handler configures")
                )
                return None
        adapter = self.adapters.get(str(adapter_name))
        if adapter is None:
            known = ", ".join(self.adapters) or "none"
            self.errors.append(
                r.error(".spec.compiledAdapter", f"unknown adapter {adapter_name!r} (installed: {known})")
            )
            return None
        try:
            params = read_params(adapter.params, raw_params)
        except ParamsError as e:
            for path, reason in e.problems:
                self.errors.append(r.error(params_path + path, reason))
            return None
        return adapter, params, params_path

    # -- instances ------------------------------------------------------------------------------

    def instance(self, r: Resource, cache: ExpressionCache) -> InstanceBuilder | None:
        if r.legacy:
            template_name, params, path, bindings = r.kind, dict(r.spec), ".spec", None
        else:
            known = {
                "compiledTemplate",
                "compiled_template",
                "params",
                "name",
                "template",
                "attributeBindings",
                "attribute_bindings",
            }
            unknown = sorted(set(r.spec) - known)
            if unknown:
                self.errors.append(
                    r.error(
                        f".spec.{unknown[0]}",
                        "unknown field (known: compiledTemplate, params, attributeBindings)",
                    )
                )
                return None
            if r.spec.get("template") is not None:
                self.errors.append(
                    r.error(
                        ".spec.template", "out-of-process templates are not supported; use compiledTemplate"
                    )
                )
                return None
            template_name = _spec_get(r.spec, "compiled_template", "compiledTemplate")
            params, path = r.spec.get("params"), ".spec.params"
            bindings = _spec_get(r.spec, "attribute_bindings", "attributeBindings")
            if not template_name:
                self.errors.append(
                    r.error(".spec.compiledTemplate", "missing: name the template of this instance")
                )
                return None
        template = TEMPLATES.get(str(template_name))
        if template is None:
            self.errors.append(
                r.error(
                    ".spec.compiledTemplate",
                    f"unknown template {template_name!r} (known: {', '.join(TEMPLATES)})",
                )
            )
            return None
        problems: list[tuple[str, str]] = []
        builder = compile_instance(r.fqn, template, params, cache, path, problems)
        compiled_bindings = self.bindings(r, template, bindings, cache.manifest, problems)
        for p, reason in problems:
            self.errors.append(r.error(p, reason))
        if builder is None or problems:
            return None
        builder.bindings = compiled_bindings
        return builder

    def bindings(
        self,
        r: Resource,
        template: Template,
        raw: Any,
        manifest: AttributeManifest,
        problems: list[tuple[str, str]],
    ) -> tuple[tuple[str, CompiledExpression], ...]:
        if raw is None:
            return ()
        path = ".spec.attributeBindings"
        if template.variety is not Variety.ATTRIBUTE_GENERATOR:
            problems.append(
                (
                    path,
                    f"only attribute-generator templates take bindings; "
                    f"{template.name!r} is {template.variety.name}",
                )
            )
            return ()
        if not isinstance(raw, Mapping):
            problems.append((path, "expected a mapping of attribute name -> expression"))
            return ()
        cache = ExpressionCache(manifest)
        out = []
        for attribute, text in raw.items():
            here = f"{path}[{str(attribute)!r}]"
            if not isinstance(text, str):
                problems.append((here, f"expected an expression (a string), got {type(text).__name__}"))
                continue
            # `$out.x` (compiled generators) and `output.x` (Mixer's dynamic form) name the adapter's output.
            rewritten = text.replace("$out.", template.output_prefix)
            if rewritten.lstrip().startswith("output."):
                rewritten = rewritten.replace("output.", template.output_prefix, 1)
            target = manifest.get(str(attribute))
            if target is None:
                problems.append(
                    (here, f"unknown attribute {attribute!r}: declare it in an attributemanifest")
                )
                continue
            compiled = compile_typed(cache, rewritten, target, here, problems)
            if compiled is not None:
                out.append((str(attribute), compiled))
        return tuple(out)

    # -- rules ----------------------------------------------------------------------------------

    def rule(
        self,
        r: Resource,
        cache: ExpressionCache,
        handler_resources: Mapping[str, Resource],
        handlers: Mapping[str, tuple[AdapterInfo, Any, str]],
        instance_resources: Mapping[str, Resource],
        instances: Mapping[str, InstanceBuilder],
    ) -> RuleConfig | None:
        before = len(self.errors)
        known = {
            "match",
            "actions",
            "requestHeaderOperations",
            "request_header_operations",
            "responseHeaderOperations",
            "response_header_operations",
            "sampling",
        }
        for key in sorted(set(r.spec) - known):
            self.errors.append(
                r.error(
                    f".spec.{key}",
                    "unknown field (known: match, actions, requestHeaderOperations, "
                    "responseHeaderOperations, sampling)",
                )
            )
        problems: list[tuple[str, str]] = []
        match = compile_typed(cache, r.spec.get("match") or "true", ValueType.BOOL, ".spec.match", problems)
        actions = []
        raw_actions = r.spec.get("actions") or []
        if not isinstance(raw_actions, list):
            problems.append((".spec.actions", "expected a list of actions"))
            raw_actions = []
        for i, raw in enumerate(raw_actions):
            action = self.action(
                r, i, raw, handler_resources, handlers, instance_resources, instances, problems
            )
            if action is not None:
                actions.append(action)
        request_ops = self.header_ops(r, "request", cache, problems)
        response_ops = self.header_ops(r, "response", cache, problems)
        if not raw_actions and not request_ops and not response_ops and not problems:
            problems.append((".spec.actions", "a rule needs at least one action or header operation"))
        for p, reason in problems:
            self.errors.append(r.error(p, reason))
        if len(self.errors) > before or match is None:
            return None
        return RuleConfig(r.fqn, r.namespace, match, tuple(actions), request_ops, response_ops)

    def action(
        self,
        r: Resource,
        index: int,
        raw: Any,
        handler_resources: Mapping[str, Resource],
        handlers: Mapping[str, tuple[AdapterInfo, Any, str]],
        instance_resources: Mapping[str, Resource],
        instances: Mapping[str, InstanceBuilder],
        problems: list[tuple[str, str]],
    ) -> ActionConfig | None:
        path = f".spec.actions[{index}]"
        if not isinstance(raw, Mapping):
            problems.append((path, "expected a mapping with handler and instances"))
            return None
        for key in sorted(set(raw) - {"handler", "instances", "name"}):
            problems.append((f"{path}.{key}", "unknown field (known: handler, instances, name)"))
        ref = raw.get("handler")
        if not ref:
            problems.append((f"{path}.handler", "missing"))
            return None
        handler_fqn = resolve_reference(str(ref), HANDLER, r.namespace, handler_resources)
        if handler_fqn is None:
            problems.append(
                (f"{path}.handler", f"handler {ref!r} not found (looked in namespace {r.namespace!r})")
            )
            return None
        adapter_entry = handlers.get(handler_fqn)
        refs = raw.get("instances") or []
        if not isinstance(refs, list) or not refs:
            problems.append((f"{path}.instances", "expected a non-empty list of instance names"))
            return None
        resolved: list[str] = []
        for j, iref in enumerate(refs):
            here = f"{path}.instances[{j}]"
            fqn = resolve_reference(str(iref), INSTANCE, r.namespace, instance_resources)
            if fqn is None:
                problems.append((here, f"instance {iref!r} not found (looked in namespace {r.namespace!r})"))
                continue
            if fqn in resolved:
                problems.append((here, f"instance {fqn!r} is named twice in this action"))
                continue
            resolved.append(fqn)
            builder = instances.get(fqn)
            if builder is None or adapter_entry is None:
                continue  # its own problems are already reported
            adapter = adapter_entry[0]
            if builder.template.name not in adapter.templates:
                problems.append(
                    (
                        here,
                        f"handler {handler_fqn!r} (adapter {adapter.name}) does not support template "
                        f"{builder.template.name!r} of instance {fqn!r}; "
                        f"it supports {', '.join(adapter.templates)}",
                    )
                )
        return ActionConfig(handler_fqn, tuple(resolved), str(raw.get("name") or ""))

    def header_ops(
        self, r: Resource, which: str, cache: ExpressionCache, problems: list[tuple[str, str]]
    ) -> tuple[HeaderOperationConfig, ...]:
        camel_key = f"{which}HeaderOperations"
        raw = _spec_get(r.spec, f"{which}_header_operations", camel_key)
        if raw is None:
            return ()
        path = f".spec.{camel_key}"
        if not isinstance(raw, list):
            problems.append((path, "expected a list of header operations"))
            return ()
        out = []
        for i, op in enumerate(raw):
            here = f"{path}[{i}]"
            if not isinstance(op, Mapping):
                problems.append((here, "expected a mapping with name, values and operation"))
                continue
            for key in sorted(set(op) - {"name", "values", "operation"}):
                problems.append((f"{here}.{key}", "unknown field (known: name, values, operation)"))
            name = op.get("name")
            if not isinstance(name, str) or not name:
                problems.append((f"{here}.name", "missing: the header name"))
                continue
            operation = op.get("operation", "REPLACE")
            code = HEADER_OPERATIONS.get(operation) if isinstance(operation, str) else operation
            if code not in HEADER_OPERATIONS.values():
                problems.append((f"{here}.operation", f"{operation!r} is not one of REPLACE, REMOVE, APPEND"))
                continue
            values = op.get("values") or []
            if not isinstance(values, list):
                problems.append((f"{here}.values", "expected a list of expressions"))
                continue
            compiled = [
                compile_typed(cache, v, ValueType.STRING, f"{here}.values[{j}]", problems)
                for j, v in enumerate(values)
            ]
            if all(c is not None for c in compiled):
                out.append(
                    HeaderOperationConfig(
                        name.lower(), tuple(c for c in compiled if c is not None), int(code)
                    )
                )
        return tuple(out)

    # -- handlers in use, and their own validation ----------------------------------------------

    def used_handlers(
        self,
        rules: tuple[RuleConfig, ...],
        handlers: Mapping[str, tuple[AdapterInfo, Any, str]],
        handler_resources: Mapping[str, Resource],
        instances: Mapping[str, InstanceBuilder],
        instance_resources: Mapping[str, Resource],
    ) -> dict[str, HandlerConfig]:
        routed: dict[str, dict[str, InstanceInfo]] = {}
        for rule in rules:
            for action in rule.actions:
                target = routed.setdefault(action.handler, {})
                for fqn in action.instances:
                    if fqn in instances:
                        target[fqn] = instances[fqn].info
        out: dict[str, HandlerConfig] = {}
        for fqn, infos in routed.items():
            entry = handlers.get(fqn)
            if entry is None:
                continue
            adapter, params, params_path = entry
            if adapter.validate is not None:
                try:
                    problems = list(adapter.validate(params, infos))
                except Exception as e:  # a plugin bug must not take the config loader down
                    problems = [("", f"adapter {adapter.name} validate failed: {type(e).__name__}: {e}")]
                for path, reason in problems:
                    self.errors.append(handler_resources[fqn].error(params_path + path, reason))
            key = _canonical(
                {
                    "adapter": adapter.name,
                    "params": params_to_dict(params),
                    "instances": {i: instance_resources[i].spec for i in sorted(infos)},
                }
            )
            out[fqn] = HandlerConfig(fqn, adapter, params, infos, key)
        return out
