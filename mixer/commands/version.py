"""`mixerd version`: mixerd's version, every installed adapter with the package that ships it, and the
templates this mixerd supports.

A plugin that cannot be loaded does not hide the rest: its error is printed and the exit code is 1.
`--json` prints one object: {"mixerd", "python", "adapters": [...], "templates": [...], "errors"}.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from typing import Any

from .. import __version__
from ..plugins import PluginError, adapter_origins, collect_adapters, make_plugin_manager
from ..templates import TEMPLATES


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "version",
        help="mixerd's version, the installed adapters (built-in and plugins) and the templates",
        description="Print mixerd's version, each installed adapter (built-in or plugin, with the package "
        "and version that ship it, and the templates it handles) and every template mixerd supports.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def report() -> dict[str, Any]:
    """What `mixerd version --json` prints."""
    adapters: list[dict[str, Any]] = []
    errors: list[str] = []
    try:
        pm = make_plugin_manager()
        infos, origins = collect_adapters(pm), adapter_origins(pm)
    except PluginError as e:
        errors.append(str(e))
        # Still show the built-ins, which ship with mixerd and load without any plugin.
        pm = make_plugin_manager(entry_points=False)
        infos, origins = collect_adapters(pm), adapter_origins(pm)
    for name, info in infos.items():
        origin = origins[name]
        adapters.append(
            {
                "name": name,
                "builtin": origin.builtin,
                "package": origin.distribution,
                "version": origin.version,
                "templates": list(info.templates),
                "description": info.description,
            }
        )
    templates = [
        {"name": t.name, "variety": t.variety.name, "description": t.description} for t in TEMPLATES.values()
    ]
    return {
        "mixerd": __version__,
        "python": platform.python_version(),
        "adapters": adapters,
        "templates": sorted(templates, key=lambda t: t["name"]),
        "errors": errors,
    }


def _text(answer: dict[str, Any]) -> list[str]:
    lines = [f"mixerd {answer['mixerd']} (Python {answer['python']})", "", "adapters:"]
    width = max((len(a["name"]) for a in answer["adapters"]), default=0)
    sources = [
        f"{'built-in' if a['builtin'] else 'plugin'} ({a['package']} {a['version']})".replace(" )", ")")
        for a in answer["adapters"]
    ]
    source_width = max((len(s) for s in sources), default=0)
    for a, source in zip(answer["adapters"], sources, strict=True):
        lines.append(f"  {a['name']:<{width}}  {source:<{source_width}}  {', '.join(a['templates'])}")
    lines += ["", "templates:"]
    width = max((len(t["name"]) for t in answer["templates"]), default=0)
    lines += [f"  {t['name']:<{width}}  {t['variety']}" for t in answer["templates"]]
    return lines


def run(args: argparse.Namespace) -> int:
    answer = report()
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        print("\n".join(_text(answer)))
    for error in answer["errors"]:
        print(f"mixerd version: {error}", file=sys.stderr)
    return 1 if answer["errors"] else 0
