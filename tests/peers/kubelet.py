"""A ConfigMap volume as the kubelet lays it out, for tests of config folders mounted from Kubernetes.

The files live in a hidden timestamped folder (`..<stamp>/`), a `..data` symlink points at it, and each
key shows at the top as a symlink through `..data`. An update writes a new folder and swaps `..data`
onto it in one rename, so a reader never sees half a version.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def write_configmap(root: Path, stamp: str, files: Mapping[str, str]) -> Path:
    """Mount (or update to) the version `stamp` of `files` in `root`, as the kubelet does; returns `root`."""
    root.mkdir(parents=True, exist_ok=True)
    real = root / f"..{stamp}"
    real.mkdir()
    for name, text in files.items():
        (real / name).write_text(text)
    tmp = root / "..data_tmp"
    tmp.symlink_to(real.name)
    os.replace(tmp, root / "..data")  # atomic swap
    for name in files:
        link = root / name
        if not link.is_symlink():
            link.symlink_to(Path("..data") / name)
    return root
