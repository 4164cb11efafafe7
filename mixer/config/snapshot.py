"""A config folder validated and compiled into a `Snapshot`, or rejected whole with every problem.

Order of work: attribute manifests (the types every expression is checked against), handlers (adapter
and params), instances (template and expressions), rules (match, references, header operations),
ratelimitconfigs (Envoy rate limit domains and the handlers that count them), and finally each used
handler's own `validate` with the instances rules send it. Any problem rejects the
config (DESIGN.md decision 5); Mixer dropped bad pieces one by one instead (MIXER.md 5.6). Every piece
is checked even when an earlier one failed, so one run lists every problem; the problems come sorted
by file and document.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..adapter import AdapterInfo, InstanceInfo
from ..attribute import AttributeManifest
from ..params import params_to_dict
from ..templates import TEMPLATES
from .bindings import compile_bindings
from .errors import ConfigError, ConfigRejected
from .fields import Problem, read_fields
from .files import DEFAULT_LIMITS, ReadLimits
from .handlers import CompiledHandler, compile_handler
from .instances import ExpressionCache, InstanceBuilder, compile_instance
from .loader import Document, FileRead, read_folder
from .manifests import compile_manifests
from .model import (
    DEFAULT_NAMESPACE,
    EMPTY_SNAPSHOT,
    HEADER_OPERATIONS,
    ActionConfig,
    ConfigSources,
    HandlerConfig,
    HeaderOperationConfig,
    ResourceSource,
    RuleConfig,
    Snapshot,
)
from .ratelimit_files import MEMORY_HANDLER, RateLimitFiles, compile_ratelimit_files, memory_handler
from .ratelimits import RateLimitContext, compile_ratelimits
from .resources import HANDLER, INSTANCE, MANIFEST, RATELIMIT, RULE, Resource, parse_resources
from .rules import RuleContext, compile_rule
from .secrets import ReadSecret

__all__ = [
    "DEFAULT_NAMESPACE",
    "EMPTY_SNAPSHOT",
    "HEADER_OPERATIONS",
    "ActionConfig",
    "HandlerConfig",
    "HeaderOperationConfig",
    "RuleConfig",
    "Snapshot",
    "compile_snapshot",
    "load_snapshot",
]

_INSTANCE_FIELDS = ("name", "compiled_template", "template", "params", "attribute_bindings")


def load_snapshot(
    folder: str | Path,
    adapters: Mapping[str, AdapterInfo],
    *,
    default_namespace: str = DEFAULT_NAMESPACE,
    limits: ReadLimits = DEFAULT_LIMITS,
    ratelimit_files: RateLimitFiles | None = None,
) -> Snapshot:
    """The folder's config compiled (with envoyproxy/ratelimit's files, when read); ConfigRejected
    lists every problem."""
    read = read_folder(Path(folder), limits)
    try:
        return compile_snapshot(
            read.documents,
            adapters,
            default_namespace=default_namespace,
            errors=read.errors,
            ratelimit_files=ratelimit_files,
            folder=str(folder),
            files=read.files,
        )
    finally:
        # The parsed YAML is tens of thousands of objects. Freed at once it held the GIL for 30-50 ms
        # (5000 rules); freed a document at a time, a loader thread lets the event loop in between.
        documents = read.documents
        while documents:
            documents.pop()


def compile_snapshot(
    documents: list[Document],
    adapters: Mapping[str, AdapterInfo],
    *,
    default_namespace: str = DEFAULT_NAMESPACE,
    errors: list[ConfigError] | None = None,
    ratelimit_files: RateLimitFiles | None = None,
    folder: str = "",
    files: Sequence[FileRead] = (),
) -> Snapshot:
    """`documents` compiled; ConfigRejected lists every problem (with those in `errors`, from reading).
    `folder` and `files` (what was read) are kept in the snapshot's `sources`, with every resource."""
    errors = list(errors or [])
    resources = parse_resources(
        documents, default_namespace=default_namespace, adapters=adapters, templates=TEMPLATES, errors=errors
    )
    snapshot = _compile(resources, adapters, default_namespace, errors, ratelimit_files)
    if errors:
        # stable: within one document, problems keep the order of the work above
        raise ConfigRejected(
            sorted(errors, key=lambda e: (e.file, e.document, -1 if e.item is None else e.item))
        )
    written = tuple(
        ResourceSource(r.kind, r.name, r.namespace, r.document.file, r.document.number, r.document.text)
        for r in resources
    )
    return dataclasses.replace(snapshot, sources=ConfigSources(folder, tuple(files), written))


def _compile(
    resources: list[Resource],
    adapters: Mapping[str, AdapterInfo],
    default_namespace: str,
    errors: list[ConfigError],
    ratelimit_files: RateLimitFiles | None = None,
) -> Snapshot:
    by_role: dict[str, list[Resource]] = {RULE: [], INSTANCE: [], HANDLER: [], MANIFEST: [], RATELIMIT: []}
    counts: dict[str, int] = {}
    for r in resources:
        role = r.kind if not r.legacy else (HANDLER if r.kind in adapters else INSTANCE)
        by_role[role].append(r)
        counts[r.kind] = counts.get(r.kind, 0) + 1

    def report(r: Resource, problems: list[Problem]) -> None:
        errors.extend(r.error(path, reason) for path, reason in problems)

    manifest = compile_manifests(by_role[MANIFEST], errors)
    handlers: dict[str, CompiledHandler] = {}
    secrets: dict[str, ReadSecret] = {}
    for r in by_role[HANDLER]:
        problems: list[Problem] = []
        handler = compile_handler(r, adapters, problems, secrets) if r.spec_ok else None
        report(r, problems)
        if handler is not None:
            handlers[r.fqn] = handler
    cache = ExpressionCache(manifest)
    instances: dict[str, InstanceBuilder] = {}
    for r in by_role[INSTANCE]:
        problems = []
        builder = _instance(r, cache, manifest, problems) if r.spec_ok else None
        report(r, problems)
        if builder is not None:
            instances[r.fqn] = builder
    ctx = RuleContext(
        cache,
        {r.fqn: r for r in by_role[HANDLER]},
        handlers,
        {r.fqn: r for r in by_role[INSTANCE]},
        instances,
    )
    rules = []
    for r in by_role[RULE]:
        problems = []
        rule = compile_rule(r, ctx, problems) if r.spec_ok else None
        report(r, problems)
        if rule is not None:
            rules.append(rule)
    limits = RateLimitContext(ctx.handler_resources, handlers, adapters)
    domains = compile_ratelimits(by_role[RATELIMIT], limits, errors)
    if ratelimit_files is not None:
        domains.update(compile_ratelimit_files(ratelimit_files, limits, default_namespace, errors))
    for fqn in limits.used:  # a handler only rate limit domains name is built too
        ctx.routed.setdefault(fqn, {})
    used = _used_handlers(ctx.routed, handlers, ctx.instance_resources, errors, limits.used)
    if any(d.handler == MEMORY_HANDLER for d in domains.values()):
        used[MEMORY_HANDLER] = memory_handler(adapters)
    return Snapshot(
        manifest,
        used,
        instances,
        tuple(rules),
        default_namespace,
        dict(sorted(counts.items())),
        dict(sorted(domains.items())),
        tuple(secrets[path] for path in sorted(secrets)),
    )


def _instance(
    r: Resource, cache: ExpressionCache, manifest: AttributeManifest, problems: list[Problem]
) -> InstanceBuilder | None:
    """The instance's builder, or None with every problem in `problems`."""
    before = len(problems)
    if r.legacy:
        template_name, template_path = r.kind, ".kind"
        params, params_path, bindings, bindings_path = r.spec, ".spec", None, ""
    else:
        spec = read_fields(r.spec, _INSTANCE_FIELDS, ".spec", problems)
        if "template" in spec:
            problems.append(
                (spec.path("template"), "out-of-process templates are not supported; use compiledTemplate")
            )
        template_name, template_path = spec.get("compiled_template"), spec.path("compiled_template")
        params, params_path = spec.get("params"), spec.path("params")
        bindings, bindings_path = spec.get("attribute_bindings"), spec.path("attribute_bindings")
        if template_name is None:
            if "template" not in spec:
                problems.append((template_path, "missing: name the template of this instance"))
            return None
    template = TEMPLATES.get(str(template_name))
    if template is None:
        problems.append(
            (template_path, f"unknown template {template_name!r} (known: {', '.join(TEMPLATES)})")
        )
        return None
    builder = compile_instance(r.fqn, template, params, cache, params_path, problems)
    compiled_bindings = compile_bindings(template, bindings, bindings_path, manifest, problems)
    if builder is None or len(problems) > before:
        return None
    builder.bindings = compiled_bindings
    return builder


def _used_handlers(
    routed: Mapping[str, Mapping[str, InstanceInfo]],
    handlers: Mapping[str, CompiledHandler],
    instance_resources: Mapping[str, Resource],
    errors: list[ConfigError],
    rate_limiting: set[str],
) -> dict[str, HandlerConfig]:
    """The handlers rules send instances to (and those ratelimitconfigs count through, in
    `rate_limiting`), each checked by its adapter's `validate` with the instances rules send it."""
    out: dict[str, HandlerConfig] = {}
    for fqn, infos in routed.items():
        handler = handlers[fqn]
        adapter = handler.adapter
        if adapter.validate is not None:
            try:
                problems = list(adapter.validate(handler.params, infos))
            except Exception as e:  # a plugin bug must not take the config loader down
                problems = [("", f"adapter {adapter.name} validate failed: {type(e).__name__}: {e}")]
            errors.extend(
                handler.resource.error(handler.params_path + path, reason) for path, reason in problems
            )
        key = "\n".join(
            [
                _canonical({"adapter": adapter.name, "params": params_to_dict(handler.params)}),
                # One instance at a time: one json.dumps of thousands held the GIL for ~20 ms.
                *(f"{i} {_canonical(instance_resources[i].spec)}" for i in sorted(infos)),
            ]
        )
        instances = dict(sorted(infos.items()))
        out[fqn] = HandlerConfig(fqn, adapter, handler.params, instances, key, fqn in rate_limiting)
    return out


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
