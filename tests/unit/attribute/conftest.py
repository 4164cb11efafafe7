"""Fixtures for the attribute-layer tests, and the `attribute_wire` helper module.

The tests run with `--import-mode=importlib`, so sibling modules are not importable by default. This
conftest loads `wire.py` from this folder under the unique module name `attribute_wire` (a plain
`wire` on sys.path could clash with another folder's helper of the same name), so test modules can
`import attribute_wire as wire`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent


def _load_wire() -> None:
    if "attribute_wire" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location("attribute_wire", _HERE / "wire.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["attribute_wire"] = module
    spec.loader.exec_module(module)


_load_wire()

#: shared/reference/ lives beside the repository (tests/unit/attribute -> repo root is parents[3]).
REFERENCE_DIR = _HERE.parents[2] / ".." / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The folder of reference data files (MIXER.md's data files), kept beside the repository on the
    project's own machines and in CI; a plain clone has no such folder, so tests comparing with it skip."""
    if not REFERENCE_DIR.is_dir():
        pytest.skip(f"reference copies absent: no {REFERENCE_DIR.resolve()} beside the repository")
    return REFERENCE_DIR
