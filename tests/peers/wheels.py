"""Building mixerd's wheel from a copy of its sources, as pip would for a user (no network, no deps)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


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


def copy_sources(target: Path) -> Path:
    """Copy the checkout's tracked and new (not ignored) files into `target` (the checkout is untouched)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in listed:
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    return target


def build_checkout_wheel(scratch: Path) -> Path:
    """mixerd's wheel, built from a copy of this checkout's sources in `scratch` (an empty folder)."""
    return build_wheel(copy_sources(scratch / "src"), scratch / "wheel")


DOCKERFILE = REPO / "deploy" / "Dockerfile"


def dockerfile_context(target: Path) -> Path:
    """The build context deploy/Dockerfile sees: exactly the files its COPY lines take from the checkout."""
    text = DOCKERFILE.read_text()
    target.mkdir(parents=True, exist_ok=True)
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.M):
        *sources, _ = line.split()
        for source in sources:
            source = source.rstrip("/")
            if (REPO / source).is_dir():
                shutil.copytree(REPO / source, target / source, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(REPO / source, target / source)
    return target


def dockerfile_pip_commands() -> list[str]:
    """The shell commands of deploy/Dockerfile's RUN instructions that run pip, in order, as written
    (continuation lines joined, RUN's own --mount options left out)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return re.findall(r"^RUN (?:--\S+\s+)*(pip\s.+?)\s*$", text, re.M)
