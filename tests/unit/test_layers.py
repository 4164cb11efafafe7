"""Imports inside mixerd point one way, down the layers of DESIGN.md 2: attribute -> lang -> config ->
runtime -> server -> commands, with the adapter SDK below config and the dispatch contract below both the
runtime and the front-ends. A module may import its own layer and the layers below it, never one above
(lazy imports inside functions and TYPE_CHECKING imports count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

MIXER = Path(__file__).resolve().parents[2] / "mixer"

#: mixerd's top-level modules and packages, lowest layer first. "__init__" is the package itself
#: (`from mixerd import __version__`).
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "__init__",
        "api",
        "bundled",
        "histogram",
        "http_server",
        "logs",
        "regex",
        "settings",
    ),  # nothing of mixerd
    ("attribute",),
    ("lang", "params", "templates"),
    ("adapter", "batching", "hookspecs", "plugins"),  # the adapter SDK
    ("config",),
    ("dispatch",),  # the contract between the front-ends and the runtime
    ("runtime",),
    ("server",),
    ("client", "commands", "cli", "__main__", "testing", "testing_scenarios", "pytest_plugin"),
)
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}


def _top(path: Path) -> str:
    """The top-level module or package `path` (under MIXER) belongs to."""
    first = path.relative_to(MIXER).parts[0]
    return first.removesuffix(".py")


def _imported(source: str, path: Path) -> list[tuple[int, str]]:
    """(line, top-level module of mixerd) for every import of mixerd in `source`, the file at `path`."""
    package = ["mixerd", *path.relative_to(MIXER).parent.parts]  # what a relative import starts from
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, str(path))):
        modules: list[list[str]] = []
        if isinstance(node, ast.Import):
            modules = [alias.name.split(".") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = [*base, *(node.module.split(".") if node.module else [])]
            # `from mixerd import x`: the module x, or a name of the package
            modules = [["mixerd", a.name] for a in node.names] if module == ["mixerd"] else [module]
        for module in modules:
            if module[0] != "mixerd":
                continue
            top = module[1] if len(module) > 1 and module[1] in LAYER_OF else "__init__"
            found.append((node.lineno, top))
    return found


def _upward(source: str, path: Path) -> list[str]:
    """The imports in `source` that point up the layers from `path`'s layer."""
    own = _top(path)
    level = LAYER_OF[own]
    return [
        f"{path.relative_to(MIXER)}:{line}: {own} imports {top}, a layer above it"
        for line, top in _imported(source, path)
        if LAYER_OF[top] > level
    ]


FILES = sorted(MIXER.rglob("*.py"))


def test_every_module_of_mixerd_has_a_layer() -> None:
    tops = {_top(path) for path in FILES}
    assert tops - set(LAYER_OF) == set(), "put the new module in LAYERS"
    assert set(LAYER_OF) - tops == set(), "a module in LAYERS is gone"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(MIXER)))
def test_imports_point_down_the_layers(path: Path) -> None:
    assert _upward(path.read_text(), path) == []


@pytest.mark.parametrize(
    ("place", "source", "wrong"),
    [
        ("runtime/check.py", "from ..server import app", "runtime imports server"),
        ("runtime/check.py", "from ..server.stats import Stats", "runtime imports server"),
        ("config/rules.py", "def f():\n    from mixerd.runtime import Runtime", "config imports runtime"),
        ("dispatch.py", "from .runtime.table import Routes", "dispatch imports runtime"),
        ("adapter/__init__.py", "from .. import server", "adapter imports server"),
        ("attribute/bag.py", "from .. import __version__", None),
        ("server/envoy/authz.py", "from ...dispatch import ALLOW", None),
        ("server/envoy/authz.py", "from . import authz_response", None),
    ],
)
def test_the_check_sees_an_upward_import(place: str, source: str, wrong: str | None) -> None:
    found = [f.split(": ", 1)[1].removesuffix(", a layer above it") for f in _upward(source, MIXER / place)]
    assert found == ([wrong] if wrong else [])
