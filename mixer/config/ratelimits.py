"""`ratelimitconfig` resources: rate limit domains in envoyproxy/ratelimit's format, read strictly.

A resource names its `domain`, the `handler` whose backend counts (a handler of an adapter with
`rate_limits`, e.g. memquota or redisquota) and its `descriptors` (ratelimit_reader.py). Two resources
claiming one domain is an error naming both. envoyproxy/ratelimit's own files, from the
`ratelimit_config` folder, are ratelimit_files.py. docs/envoy/ratelimit.md is the reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..adapter import AdapterInfo
from .errors import ConfigError
from .fields import Problem, read_fields, type_name
from .handlers import CompiledHandler
from .ratelimit_model import RateLimitDomain
from .ratelimit_reader import DescriptorReader
from .resources import HANDLER, Resource, resolve_reference, unresolved_reason

_SPEC_FIELDS = ("domain", "handler", "descriptors")


@dataclass
class RateLimitContext:
    """What rate limit domains are compiled against; `used` collects the handler FQNs they name."""

    handler_resources: Mapping[str, Resource]  # every handler-role resource, by FQN
    handlers: Mapping[str, CompiledHandler]  # the valid ones
    adapters: Mapping[str, AdapterInfo]
    used: set[str] = field(default_factory=set)
    #: Where each domain is configured, for a second claim's message: "ratelimitconfig '<fqn>' in <file>
    #: (document <n>)", or an envoyproxy/ratelimit file's path.
    owners: dict[str, str] = field(default_factory=dict)


def compile_ratelimits(
    resources: list[Resource], ctx: RateLimitContext, errors: list[ConfigError]
) -> dict[str, RateLimitDomain]:
    """Each resource's domain, by domain name; every problem goes to `errors`."""
    domains: dict[str, RateLimitDomain] = {}
    for r in resources:
        problems: list[Problem] = []
        domain = _domain(r, ctx, problems) if r.spec_ok else None
        errors.extend(r.error(path, reason) for path, reason in problems)
        name = r.spec.get("domain") if r.spec_ok else None
        if isinstance(name, str) and name:
            earlier = ctx.owners.get(name)
            if earlier is not None:
                errors.append(r.error(".spec.domain", f"domain {name!r} is also configured by {earlier}"))
                continue
            where = f"{r.document.file} (document {r.document.number})"
            ctx.owners[name] = f"ratelimitconfig {r.fqn!r} in {where}"
        if domain is not None:
            domains[domain.domain] = domain
    return domains


def _domain(r: Resource, ctx: RateLimitContext, problems: list[Problem]) -> RateLimitDomain | None:
    before = len(problems)
    spec = read_fields(r.spec, _SPEC_FIELDS, ".spec", problems)
    name = spec.get("domain")
    if name is None or name == "":
        problems.append((spec.path("domain"), "missing: name the domain Envoy sends (its filter's `domain`)"))
    elif not isinstance(name, str):
        problems.append((spec.path("domain"), f"expected a string, got {type_name(name)}"))
    handler = _handler(r, spec.get("handler"), spec.path("handler"), ctx, problems)
    reader = DescriptorReader(problems)
    table = reader.table(spec.get("descriptors", []), spec.path("descriptors"), "")
    reader.check_replaces(reader.names)
    if len(problems) > before or handler is None:
        return None
    return RateLimitDomain(str(name), r.fqn, handler, table)


def _handler(r: Resource, ref: Any, path: str, ctx: RateLimitContext, problems: list[Problem]) -> str | None:
    if ref is None or ref == "":
        problems.append((path, "missing: name the handler that counts (memquota or redisquota)"))
        return None
    if not isinstance(ref, str):
        problems.append((path, f"expected a handler name, got {type_name(ref)}"))
        return None
    return counting_handler(ref, r.namespace, ctx, path, problems)


def counting_handler(
    ref: str, namespace: str, ctx: RateLimitContext, path: str, problems: list[Problem]
) -> str | None:
    """The FQN of the handler `ref` names (as a rule in `namespace` would), when it can count rate
    limits; None with a problem otherwise (nothing more for a handler invalid in itself: its own problems
    are reported where it is defined)."""
    fqn = resolve_reference(ref, HANDLER, namespace, ctx.handler_resources)
    if fqn is None:
        problems.append((path, unresolved_reason(ref, HANDLER, namespace, ctx.handler_resources)))
        return None
    handler = ctx.handlers.get(fqn)
    if handler is None:
        return None
    if not handler.adapter.rate_limits:
        able = ", ".join(name for name, info in ctx.adapters.items() if info.rate_limits) or "none"
        problems.append(
            (
                path,
                f"handler {fqn!r} (adapter {handler.adapter.name}) cannot count rate limits; "
                f"name a handler of an adapter that can: {able}",
            )
        )
        return None
    ctx.used.add(fqn)
    return fqn
