"""The runtime's unit tests share `rig.py`, loaded here as the module `runtime_rig` (the tests run with
`--import-mode=importlib`, so a sibling module is not importable by its own name; a unique name cannot
clash with another folder's helper)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _load_rig() -> None:
    if "runtime_rig" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location("runtime_rig", Path(__file__).resolve().parent / "rig.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["runtime_rig"] = module
    spec.loader.exec_module(module)


_load_rig()
