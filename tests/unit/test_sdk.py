"""`mixerd.adapter` is the one door for adapters: the built-ins import nothing else of mixerd and nothing of
each other, and its handler Protocols name every method the runtime may call on a handler."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import mixerd.adapter as sdk
from mixerd.templates import TEMPLATES

ADAPTERS = Path(__file__).resolve().parents[2] / "adapters"
RUNTIME = Path(__file__).resolve().parents[2] / "mixer" / "runtime"


def _imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file; a relative import is resolved against the
    file's place under `root` (adapters/), so `..memquota` is `mixerd_adapters.memquota`."""
    package = ["mixerd_adapters", *path.relative_to(root).parent.parts]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            if module in ("mixerd", "mixerd_adapters"):  # `from mixerd import x`: mixerd.x, or a name of it
                found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
            else:
                found.append((node.lineno, module))
    return found


def _wrong_imports(path: Path, root: Path) -> list[str]:
    """Imports of mixerd other than mixerd.adapter, and of another adapter's package."""
    own = f"mixerd_adapters.{path.relative_to(root).parts[0]}"
    wrong = []
    for line, module in _imports(path, root):
        if module.split(".")[0] == "mixerd" and module != "mixerd.adapter":
            wrong.append(f"{path.name}:{line}: {module} (use mixerd.adapter)")
        elif module.split(".")[0] == "mixerd_adapters" and module != own and not module.startswith(own + "."):
            wrong.append(f"{path.name}:{line}: {module} (another adapter)")
    return wrong


ADAPTER_FILES = sorted(p for p in ADAPTERS.rglob("*.py") if p.parent != ADAPTERS)


def test_the_adapter_files_are_found() -> None:
    assert len(ADAPTER_FILES) > 40
    assert (ADAPTERS / "redisquota" / "handler.py") in ADAPTER_FILES


@pytest.mark.parametrize("path", ADAPTER_FILES, ids=lambda p: str(p.relative_to(ADAPTERS)))
def test_built_in_adapters_import_only_the_sdk_and_themselves(path: Path) -> None:
    assert _wrong_imports(path, ADAPTERS) == []


def test_the_import_check_refuses_the_rest_of_mixerd_and_other_adapters(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    module = tmp_path / "mine" / "handler.py"
    module.write_text(
        "from mixerd import __version__\nimport mixerd.params\nfrom ..memquota import x\n"
        "from mixerd_adapters.memquota import y\nfrom . import params\nfrom mixerd.adapter import Env\n"
        "from .params import Params\nimport mixerd_adapters.mine.sinks\n"
    )
    assert _wrong_imports(module, tmp_path) == [
        "handler.py:1: mixerd.__version__ (use mixerd.adapter)",
        "handler.py:2: mixerd.params (use mixerd.adapter)",
        "handler.py:3: mixerd_adapters.memquota (another adapter)",
        "handler.py:4: mixerd_adapters.memquota (another adapter)",
    ]


def test_every_name_the_sdk_exports_exists() -> None:
    assert sorted(sdk.__all__) == sorted(set(sdk.__all__))
    assert [name for name in sdk.__all__ if not hasattr(sdk, name)] == []


def test_every_template_has_a_handler_protocol_with_its_method() -> None:
    assert set(sdk.TEMPLATE_PROTOCOLS) == set(TEMPLATES)
    for name, template in TEMPLATES.items():
        protocol = sdk.TEMPLATE_PROTOCOLS[name]
        methods = [m for m in vars(protocol) if not m.startswith("_")]
        assert methods == [template.method], protocol
        signature = inspect.signature(getattr(protocol, template.method))
        arguments = 2 if template.variety == sdk.Variety.QUOTA else 1
        assert len(signature.parameters) == 1 + arguments, protocol


def test_the_optional_method_names_come_from_their_protocols() -> None:
    names = {
        sdk.HANDLE_QUOTAS: sdk.SupportsQuotaBatch,
        sdk.HANDLE_RATE_LIMITS: sdk.SupportsRateLimits,
        sdk.DELIVERY_STATS: sdk.SupportsDeliveryStats,
        sdk.SPAN_COUNTS: sdk.SupportsSpanCounts,
        sdk.GENERATION_STATS: sdk.SupportsGenerationStats,
        sdk.CLOSE: sdk.SupportsClose,
    }
    for name, protocol in names.items():
        assert [m for m in vars(protocol) if not m.startswith("_")] == [name]


def test_the_runtime_names_no_handler_method_itself() -> None:
    """Every method the runtime looks up on a handler is named by the SDK, not by a string of its own."""
    found = []
    for path in sorted(RUNTIME.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            is_lookup = isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("getattr", "hasattr")
            if is_lookup and len(node.args) > 1 and isinstance(node.args[1], ast.Constant | ast.JoinedStr):
                found.append(f"{path.name}:{node.lineno}")
    assert found == []
