"""`mixerd examples [NAME DEST]`: the examples that ship with mixerd, and a copy of one to edit.

Without arguments it lists each example (its folder name and the first line of its description) and
where they are installed. With NAME and DEST it copies that example into DEST, a folder that must not
exist yet, so that `mixerd serve --config DEST` serves it and edits never touch the installed package.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from ..bundled import rules_folder


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "examples",
        help="list the bundled examples, or copy one to a folder of your own",
        description="List the examples that ship with mixerd (config folders, and the example adapter "
        "package), or copy example NAME into DEST (which must not exist) to serve and edit it.",
    )
    p.add_argument("name", metavar="NAME", nargs="?", help="the example to copy")
    p.add_argument("dest", metavar="DEST", nargs="?", help="the folder to copy it into (must not exist)")
    p.set_defaults(run=run)


def summary(folder: Path) -> str:
    """The first line of an example's description: its README's first paragraph, or the first comment
    line of its first YAML file."""
    readme = folder / "README.md"
    if readme.is_file():
        lines = [line for line in readme.read_text(encoding="utf-8").splitlines() if line.strip()]
        prose = [line for line in lines if not line.startswith(("#", "```"))]
        if prose:
            return prose[0].strip()
    for path in sorted(folder.glob("*.yaml")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("# ") and line[2:].strip():
                return line[2:].strip()
    return ""


def is_ratelimit_folder(folder: Path) -> bool:
    """Whether `folder` holds envoyproxy/ratelimit files (each with a top-level `domain:`, none a Mixer
    resource), which `mixerd serve --ratelimit-config` serves, rather than a `--config` folder."""
    texts = [p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.yaml"))]
    return bool(texts) and all(
        re.search(r"^domain:", t, re.M) and not re.search(r"^apiVersion:", t, re.M) for t in texts
    )


def examples() -> dict[str, Path]:
    """Example name -> its installed folder."""
    base = rules_folder("examples")
    return {p.name: p for p in sorted(base.iterdir()) if p.is_dir() and not p.name.startswith((".", "_"))}


def run(args: argparse.Namespace) -> int:
    found = examples()
    if args.name is None:
        width = max(map(len, found), default=0)
        for name, folder in found.items():
            print(f"{name:<{width}}  {summary(folder)}")
        print(f"\n(in {rules_folder('examples')}; `mixerd examples NAME DEST` copies one to edit)")
        return 0
    if args.name not in found:
        print(f"mixerd examples: no example {args.name!r} (there are: {', '.join(found)})", file=sys.stderr)
        return 2
    if args.dest is None:
        print("mixerd examples: say where to copy it: mixerd examples NAME DEST", file=sys.stderr)
        return 2
    dest = Path(args.dest)
    if dest.exists():
        print(f"mixerd examples: {dest} exists; name a folder that does not", file=sys.stderr)
        return 2
    shutil.copytree(found[args.name], dest, ignore=shutil.ignore_patterns("__pycache__"))
    flag = "--ratelimit-config" if is_ratelimit_folder(dest) else "--config"
    print(f"copied {args.name} to {dest}: mixerd serve {flag} {dest}")
    return 0
