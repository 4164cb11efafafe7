"""Building mixerd's wheel from a copy of its sources, as pip would for a user (no network, no deps)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def build_wheel(source: Path, out: Path) -> Path:
    """The `mixerd-*.whl` that `pip wheel` builds from the project in `source` into `out`."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            ".",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
        ],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("mixerd-*.whl")
    return built
