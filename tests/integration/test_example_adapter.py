"""The example adapter of docs/adapters.md as its users meet it: pip-installed as a separate package,
found through its `mixerd.adapters` entry point by `mixerd serve`, answering real Check calls.

Without the package on the path, the same config is refused at start-up, naming the unknown adapter.
And as its author meets it: in a fresh venv with nothing but mixerd's wheel (built from this checkout),
the package and pytest, its own tests pass, with mixerd's pytest plugin and conformance checks.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from peers.wheels import build_checkout_wheel

from mixerd.api.mixer.v1 import mixer_pb2, mixer_pb2_grpc
from mixerd.attribute import GLOBAL_WORDS, encode_attributes, encode_report
from mixerd.plugins import load_adapters
from mixerd.server.app import READY_PATTERN, served_services
from mixerd.testing.conformance import CHECKS

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "rules" / "examples" / "strikes-adapter"
CONFIG = EXAMPLE / "config"
UNAUTHENTICATED = 16


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder the example package is pip-installed into (from a copy, so no build files land in the
    checkout)."""
    src = tmp_path_factory.mktemp("example-src") / "example_adapter"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-input",
            "--disable-pip-version-check",
            "-q",
            "--target",
            str(target),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return target


def test_the_installed_package_declares_its_entry_point(site: Path) -> None:
    (dist,) = site.glob("mixerd_example_adapter-0.1.0.dist-info")
    assert (dist / "entry_points.txt").read_text().split() == [
        "[mixerd.adapters]",
        "strikes",
        "=",
        "mixerd_example_adapter",
    ]
    assert (site / "mixerd_example_adapter" / "handler.py").is_file()


def _environment(pythonpath: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIXERD_") and k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return env


def _serve(pythonpath: Path | None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mixerd",
            "serve",
            "--port",
            "0",
            "--monitoring-port",
            "0",
            "--admin-port",
            "0",
            "--address",
            "127.0.0.1",
            "--config",
            str(CONFIG),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(pythonpath),
        cwd=EXAMPLE.parent,  # not the checkout root, so nothing is imported from the current folder
    )


@pytest.fixture
def served(site: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`mixerd serve` with the installed package on PYTHONPATH, and its gRPC address."""
    proc = _serve(site)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().rstrip("\n")
        ready = READY_PATTERN.match(line)
        if ready is None:
            proc.kill()
            _, stderr = proc.communicate(timeout=10)
            pytest.fail(f"no ready line: {line!r}; stderr: {stderr}")
        assert served_services(ready.group(1))[0] == "istio.mixer.v1.Mixer"
        yield proc, f"127.0.0.1:{ready.group(3)}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _request(principal: str, code: int = 200) -> dict[str, Any]:
    return {"source.principal": principal, "response.code": code}


def _check(mixer: mixer_pb2_grpc.MixerStub, principal: str) -> Any:
    request = mixer_pb2.CheckRequest(
        attributes=encode_attributes(_request(principal)), global_word_count=len(GLOBAL_WORDS)
    )
    return mixer.Check(request, timeout=10).precondition


def test_mixerd_serve_finds_the_plugin_and_returns_its_verdicts(
    served: tuple[subprocess.Popen[str], str],
) -> None:
    proc, address = served
    with grpc.insecure_channel(address) as channel:
        mixer = mixer_pb2_grpc.MixerStub(channel)
        assert _check(mixer, "bob").status.code == 0
        bags = [_request("bob", 401), _request("alice", 401), _request("bob", 404), _request("alice", 401)]
        mixer.Report(encode_report(bags), timeout=10)
        assert _check(mixer, "bob").status.code == 0  # one strike so far
        mixer.Report(encode_report([_request("bob", 401)]), timeout=10)

        bob = _check(mixer, "bob")
        assert bob.status.code == UNAUTHENTICATED
        assert bob.status.message == "strikes.handler.istio-system:bob has 2 strikes in the last 1m0s"
        assert 0 < bob.valid_duration.seconds <= 60
        alice = _check(mixer, "alice")  # exempt in the config, however many strikes
        assert alice.status.code == 0
        assert alice.valid_duration.seconds == 1  # the handler's validDuration
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_without_the_package_the_config_is_refused_at_start_up() -> None:
    proc = _serve(None)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert stdout == ""
    installed = ", ".join(load_adapters())  # the built-ins (this test runs without the example package)
    problem = (
        "strikes.yaml: handler 'strikes.handler.istio-system' .spec.compiledAdapter: "
        f"unknown adapter 'strikes' (installed: {installed})"
    )
    assert [line.strip() for line in stderr.splitlines()[1:]] == [problem], stderr
    assert stderr.startswith(f"mixerd serve: error: {CONFIG}: "), stderr


def test_mixerd_version_names_the_plugin_and_its_package(site: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mixerd", "version"],
        env=_environment(site),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    [row] = [line.split() for line in done.stdout.splitlines() if line.startswith("  strikes ")]
    assert row == ["strikes", "plugin", "(mixerd-example-adapter", "0.1.0)", "listentry,", "metric"]
    # The same line as docs/cli.md shows, but for the column widths.
    doc = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    assert " ".join(row) in {" ".join(line.split()) for line in doc.splitlines()}


# -- the author's side: the package's own tests, in a venv of its own ------------------------------------


def _pip(python: Path, *args: str) -> None:
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-input", "--disable-pip-version-check", "-q", *args],
        env=_environment(None),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"pip install {args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def author(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A fresh venv holding mixerd's wheel, the example package and pytest (plain pip, dependencies from
    the package index), and a copy of the package's folder: (the venv's python, the folder)."""
    scratch = tmp_path_factory.mktemp("author")
    wheel = build_checkout_wheel(scratch)
    folder = scratch / "strikes-adapter"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    venv.create(scratch / "venv", with_pip=True)
    python = scratch / "venv" / "bin" / "python"
    _pip(python, str(wheel))
    _pip(python, f"{folder}[test]")  # what the guide tells an author: the package with its test extra
    return python, folder


def _pytest(python: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=_environment(None),
        capture_output=True,
        text=True,
        timeout=300,
    )


#: Building the wheel and installing a venv from the package index takes minutes on a busy machine.
INSTALLS = pytest.mark.timeout(900)


@INSTALLS
def test_the_example_passes_its_own_tests_with_only_mixerd_and_pytest(author: tuple[Path, Path]) -> None:
    python, folder = author
    done = _pytest(python, folder, "-v")
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    assert "mixerd 0.1.0: adapter modules under test: mixerd_example_adapter" in done.stdout
    passed = {line.split("::")[-1].split()[0] for line in done.stdout.splitlines() if " PASSED" in line}
    checks = {f"test_conformance[{check}]" for check in CHECKS}
    assert checks <= passed, done.stdout
    assert "test_two_401s_box_a_principal_for_a_minute" in passed


@INSTALLS
def test_the_plugin_costs_a_project_that_does_not_ask_for_it_one_small_module(
    author: tuple[Path, Path], tmp_path: Path
) -> None:
    python, _ = author
    (tmp_path / "test_other.py").write_text("def test_other():\n    pass\n")
    script = (
        "import json, sys, pytest\n"
        "assert pytest.main(['-q', '-p', 'no:cacheprovider']) == 0\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0].startswith('mixerd'))))\n"
    )
    done = subprocess.run(
        [str(python), "-c", script], cwd=tmp_path, env=_environment(None), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == '["mixerd", "mixerd.pytest_plugin"]'
