"""Loading and compiling a large config: 1000 rules (plus their instances and handlers) from YAML to a
routing table in force, against a baseline of only parsing the same YAML (issue 4's target: < 2 s).

Each rule has its own match and its own listentry instance over a shared listchecker handler, and every
tenth rule also a quota instance over memquota, so the expressions are distinct and nothing is shared
by accident.

Usage: python bench/config_load.py [--rules N] [--repeats N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from mixerd.config import load_snapshot, read_documents
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime

# The same YAML parser the config loader uses (libyaml's when installed), so the baseline is fair.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def write_config(folder: Path, rules: int) -> None:
    quotas = "\n".join(
        f"    - {{name: q{i}.instance.istio-system, maxAmount: {100 + i}, validDuration: 1s}}"
        for i in range(0, rules, 10)
    )
    docs = [
        "apiVersion: config.istio.io/v1alpha2\nkind: handler\nmetadata: {name: lists}\nspec:\n"
        "  compiledAdapter: listchecker\n  params: {overrides: [a, b, c], blacklist: true}\n",
        f"apiVersion: config.istio.io/v1alpha2\nkind: handler\nmetadata: {{name: quotas}}\nspec:\n"
        f"  compiledAdapter: memquota\n  params:\n    quotas:\n{quotas}\n",
    ]
    for i in range(rules):
        docs.append(
            f"apiVersion: config.istio.io/v1alpha2\nkind: instance\nmetadata: {{name: v{i}}}\nspec:\n"
            f"  compiledTemplate: listentry\n"
            f"  params:\n"
            f'    value: request.headers["x-key-{i}"] | source.principal | "none-{i}"\n'
        )
        actions = f"[{{handler: lists, instances: [v{i}]}}]"
        if i % 10 == 0:
            docs.append(
                f"apiVersion: config.istio.io/v1alpha2\nkind: instance\nmetadata: {{name: q{i}}}\nspec:\n"
                f"  compiledTemplate: quota\n"
                f"  params:\n    dimensions:\n"
                f'      user: request.headers["x-user"] | "anon"\n'
                f'      n: "{i}"\n'
            )
            actions = f"[{{handler: lists, instances: [v{i}]}}, {{handler: quotas, instances: [q{i}]}}]"
        docs.append(
            f"apiVersion: config.istio.io/v1alpha2\nkind: rule\nmetadata: {{name: r{i}}}\nspec:\n"
            f'  match: destination.service.host == "svc-{i}.default.svc.cluster.local" && '
            f'request.path.startsWith("/api/{i}/")\n'
            f"  actions: {actions}\n"
        )
    for n in range(10):  # ten files, as a real config folder would be split
        (folder / f"part{n}.yaml").write_text("---\n".join(docs[n::10]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    adapters = load_adapters()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_config(folder, args.rules)
        parse, compile_, apply = [], [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            for path in sorted(folder.glob("*.yaml")):
                list(yaml.load_all(path.read_text(), Loader=_LOADER))
            parse.append(time.perf_counter() - t)
            t = time.perf_counter()
            snapshot = load_snapshot(folder, adapters)
            compile_.append(time.perf_counter() - t)
            runtime = Runtime(adapters, folder=folder)
            t = time.perf_counter()
            asyncio.run(_apply(runtime, snapshot))
            apply.append(time.perf_counter() - t)
        docs, _ = read_documents(folder)
    p, c, a = (statistics.median(x) for x in (parse, compile_, apply))
    print(f"{args.rules} rules, {len(docs)} documents in 10 files; median of {args.repeats}")
    print(f"  YAML parse only (baseline)       {p:6.3f} s")
    print(f"  read + validate + compile        {c:6.3f} s   ({c / p:.2f}x the YAML parse)")
    print(f"  build handlers + routing table   {a:6.3f} s")
    print(f"  total, files to table in force   {c + a:6.3f} s")


async def _apply(runtime: Runtime, snapshot: object) -> None:
    await runtime.apply(snapshot)  # type: ignore[arg-type]
    await runtime.close()


if __name__ == "__main__":
    main()
