"""Handler resources: which adapter they configure, and its params read strictly (MIXER.md 5.4).

Mixer quietly used an adapter's default config when its params did not convert; here any params
problem is an error (DESIGN.md decision 5). An adapter's own `validate(params, instances)` runs later,
once the rules have said which instances each handler receives (see snapshot.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..adapter import AdapterInfo
from ..params import ParamsError, read_params
from .fields import Problem, read_fields
from .resources import Resource
from .secrets import ReadSecret
from .secrets import resolve as resolve_secrets

_FIELDS = ("name", "compiled_adapter", "adapter", "params", "connection")


@dataclass(frozen=True, slots=True)
class CompiledHandler:
    """A handler whose adapter exists and whose params fit the adapter's model."""

    resource: Resource
    adapter: AdapterInfo
    params: Any
    params_path: str  # where the params are in the document: `.spec.params`, or `.spec` for legacy kinds


def compile_handler(
    r: Resource,
    adapters: Mapping[str, AdapterInfo],
    problems: list[Problem],
    secrets: dict[str, ReadSecret] | None = None,
) -> CompiledHandler | None:
    """The handler's adapter and params, or None with every problem in `problems`. References to secrets
    in the params (`${env:NAME}`, `${file:/path}`) are resolved first; the files read go into `secrets`."""
    if r.legacy:
        adapter_name, raw_params, params_path, adapter_path = r.kind, r.spec, ".spec", ".kind"
    else:
        spec = read_fields(r.spec, _FIELDS, ".spec", problems)
        for unsupported in ("adapter", "connection"):
            if unsupported in spec:
                problems.append(
                    (
                        spec.path(unsupported),
                        "out-of-process adapters are not supported; "
                        "use compiledAdapter with an installed adapter",
                    )
                )
        adapter_name = spec.get("compiled_adapter")
        adapter_path = spec.path("compiled_adapter")
        raw_params, params_path = spec.get("params"), spec.path("params")
        if adapter_name is None:
            if "adapter" not in spec:
                problems.append((adapter_path, "missing: name the adapter this handler configures"))
            return None
    adapter = adapters.get(str(adapter_name))
    if adapter is None:
        installed = ", ".join(adapters) or "none"
        problems.append((adapter_path, f"unknown adapter {adapter_name!r} (installed: {installed})"))
        return None
    before = len(problems)
    raw_params = resolve_secrets(raw_params, params_path, problems, {} if secrets is None else secrets)
    if len(problems) > before:
        return None
    try:
        params: Any = read_params(adapter.params, raw_params)
    except ParamsError as e:
        problems.extend((params_path + path, reason) for path, reason in e.problems)
        return None
    return CompiledHandler(r, adapter, params, params_path)
