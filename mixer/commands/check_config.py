"""`mixerd check-config [DIR] [--ratelimit-config RLDIR]`: validate a config offline, with the server's
own loader.

Prints every problem, one per line (`<file>: <kind> '<fqn>' <path>: <reason>`), and exits 1; or, when
the config is valid, one summary line and exits 0. `--json` prints one object instead. A DIR that is
not a folder, or adapters that cannot be loaded, exit 2. With `--ratelimit-config` (envoyproxy/ratelimit's
files) and no DIR, the embedded default rules stand for `--config`, as with `mixerd serve`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from .. import settings as _settings
from ..bundled import rules_folder
from ..config import ConfigError, ConfigRejected, ReadLimits, Snapshot, load_snapshot
from ..config.ratelimit_files import files_of
from ..plugins import PluginError, load_adapters

#: The `serve` settings that change how a folder loads, so check-config takes them too.
_LOADING = (
    "config_default_namespace",
    "config_max_file_bytes",
    "config_max_total_bytes",
    "ratelimit_config",
    "ratelimit_handler",
    "ratelimit_merge_domain_config",
)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "check-config",
        help="validate a config folder: every problem, or a summary",
        description="Load a config folder the way `mixerd serve --config DIR` does, with the installed "
        "adapters, and print every problem (file, resource and field path) or a one-line summary. "
        "Exit codes: 0 valid, 1 invalid, 2 DIR is not a folder or the adapters cannot be loaded.",
    )
    p.add_argument(
        "folder",
        metavar="DIR",
        nargs="?",
        help="the config folder (*.yaml / *.yml files, recursively); with --ratelimit-config only, the "
        "embedded default rules",
    )
    p.add_argument("--json", action="store_true", help='print {"valid", "errors", "summary"}')
    _settings.add_arguments(p, only=_LOADING)
    p.set_defaults(run=run)


def summary(snapshot: Snapshot) -> dict[str, Any]:
    """The counts a valid config's summary shows."""
    return {
        "rules": len(snapshot.rules),
        "instances": len(snapshot.instances),
        "handlers_used": len(snapshot.handlers),
        "attribute_manifests": snapshot.resources_by_kind.get("attributemanifest", 0),
        "resources_by_kind": dict(snapshot.resources_by_kind),
        "rate_limit_domains": sorted(snapshot.rate_limit_domains),
    }


def summary_line(counts: Mapping[str, Any]) -> str:
    """`valid: 6 rules, 9 instances, 2 handlers in use, 2 attribute manifests; resources: ...`, and the
    rate limit domains when there are some."""
    kinds = ", ".join(f"{kind} {n}" for kind, n in counts["resources_by_kind"].items()) or "none"
    line = (
        f"valid: {_count(counts['rules'], 'rule')}, {_count(counts['instances'], 'instance')}, "
        f"{_count(counts['handlers_used'], 'handler')} in use, "
        f"{_count(counts['attribute_manifests'], 'attribute manifest')}; resources by kind: {kinds}"
    )
    domains = counts.get("rate_limit_domains") or []
    return line + (f"; rate limit domains: {', '.join(domains)}" if domains else "")


def error_json(e: ConfigError) -> dict[str, Any]:
    return {
        "file": e.file,
        "document": e.document,
        "item": e.item,  # the index in a list document's items, or null
        "kind": e.kind,
        "resource": e.resource,
        "path": e.path,
        "reason": e.reason,
        "message": str(e),
    }


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def run(args: argparse.Namespace) -> int:
    folder = args.folder
    if folder is None and args.ratelimit_config is None:
        print("mixerd check-config: error: give DIR, --ratelimit-config RLDIR, or both", file=sys.stderr)
        return 2
    for checked in (folder, args.ratelimit_config):
        if checked is not None and not os.path.isdir(checked):
            print(f"mixerd check-config: error: {checked}: not a folder", file=sys.stderr)
            return 2
    if folder is None:
        folder = str(rules_folder())
    try:
        adapters = load_adapters()
    except PluginError as e:
        print(f"mixerd check-config: error: {e}", file=sys.stderr)
        return 2
    try:
        limits = ReadLimits(args.config_max_file_bytes, args.config_max_total_bytes)
        snapshot = load_snapshot(
            folder,
            adapters,
            default_namespace=args.config_default_namespace,
            limits=limits,
            ratelimit_files=files_of(_settings.Settings(**{n: getattr(args, n) for n in _LOADING}), limits),
        )
    except ConfigRejected as e:
        if args.json:
            print(json.dumps({"valid": False, "errors": [error_json(x) for x in e.errors], "summary": None}))
        else:
            print("\n".join(str(x) for x in e.errors))
            n = len(e.errors)
            checked = " and ".join(f for f in (args.folder, args.ratelimit_config) if f is not None)
            print(f"mixerd check-config: {checked}: {_count(n, 'problem')}; rejected whole", file=sys.stderr)
        return 1
    counts = summary(snapshot)
    if args.json:
        print(json.dumps({"valid": True, "errors": [], "summary": counts}))
    else:
        print(summary_line(counts))
    return 0
