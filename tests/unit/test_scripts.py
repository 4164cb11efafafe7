"""The README's set-up scripts: `./scripts/serve` installs once, then starts without reinstalling until the
packaging changes.

The venv is a stand-in whose `python` and `mixerd` record how they were called, so each test sees what
the script ran without installing anything (the real install is what the whole suite runs in).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_RECORDER = """#!/bin/sh
echo "$(basename "$0") $*" >>"{log}"
"""


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """A venv whose bin/python and bin/mixerd only append their arguments to calls.log."""
    folder = tmp_path / "venv"
    (folder / "bin").mkdir(parents=True)
    for name in ("python", "mixerd"):
        tool = folder / "bin" / name
        tool.write_text(_RECORDER.format(log=folder / "calls.log"))
        tool.chmod(0o755)
    return folder


def _run(script: str, venv: Path, *args: str, checkout: Path = ROOT) -> list[str]:
    """Run scripts/<script> against `venv`; the calls it made, one line each."""
    log = venv / "calls.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "MIXERD_VENV": str(venv), "PYTHON": sys.executable}
    subprocess.run([str(checkout / "scripts" / script), *args], check=True, env=env, timeout=60)
    return log.read_text().splitlines() if log.exists() else []


def _pip_installs(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith("python -m pip install")]


def test_serve_installs_the_first_time_then_starts_at_once(venv: Path) -> None:
    first = _run("serve", venv, "--port", "0")
    assert _pip_installs(first) == ["python -m pip install --quiet --disable-pip-version-check -e ."]
    assert first[-1] == "mixerd serve --port 0"
    # Nothing changed: no pip at all, straight to the server.
    assert _run("serve", venv, "--port", "0") == ["mixerd serve --port 0"]


def test_a_change_to_the_packaging_reinstalls(venv: Path, tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("pyproject.toml", "setup.py"):
        shutil.copy(ROOT / name, checkout / name)
    shutil.copytree(ROOT / "scripts", checkout / "scripts")
    assert _pip_installs(_run("serve", venv, checkout=checkout))
    assert not _pip_installs(_run("serve", venv, checkout=checkout))
    with (checkout / "pyproject.toml").open("a") as f:
        f.write("\n# a new dependency, say\n")
    assert _pip_installs(_run("serve", venv, checkout=checkout))


def test_the_test_install_also_serves(venv: Path) -> None:
    """After the install with the test extra (./scripts/test), ./scripts/serve has nothing to install."""
    env = {**os.environ, "MIXERD_VENV": str(venv)}
    source = f"source {ROOT / 'scripts' / '_venv.sh'} && mixerd_install test"
    subprocess.run(["bash", "-c", source], check=True, env=env, timeout=60)
    calls = (venv / "calls.log").read_text().splitlines()
    assert _pip_installs(calls) == ["python -m pip install --quiet --disable-pip-version-check -e .[test]"]
    assert _run("serve", venv) == ["mixerd serve"]
