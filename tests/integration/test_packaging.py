"""mixerd installs and runs both from a wheel and from an editable install.

The source folders are mixer/ and adapters/, but they install as `mixerd` and `mixerd_adapters`
(PyPI's `mixer` and `adapters` projects own those names): these tests hold the package layout to that.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import grpc
import pytest
from peers.wheels import build_checkout_wheel

import mixerd
from mixerd.api.mixer.v1 import mixer_pb2, mixer_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def test_editable_install_maps_the_source_folders() -> None:
    import mixerd_adapters

    assert Path(mixerd.__file__).resolve().parent == REPO / "mixer"
    assert Path(mixerd_adapters.__file__).resolve().parent == REPO / "adapters"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the tracked and new source files (the checkout is left untouched)."""
    return build_checkout_wheel(tmp_path_factory.mktemp("build"))


def test_wheel_contains_the_renamed_packages_and_their_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "mixerd/__init__.py",
        "mixerd/py.typed",
        "mixerd/cli.py",
        "mixerd/api/mixer/v1/mixer_pb2.py",
        "mixerd/api/mixer/v1/mixer_pb2_grpc.py",
        "mixerd/api/policy/v1beta1/type_pb2.py",
        "mixerd/api/envoy/service/auth/v3/external_auth_pb2.py",
        "mixerd/api/envoy/service/auth/v3/external_auth_pb2.pyi",
        "mixerd/api/envoy/service/ratelimit/v3/rls_pb2.py",
        "mixerd/api/envoy/service/accesslog/v3/als_pb2.py",
        "mixerd/api/envoy/data/accesslog/v3/accesslog_pb2.py",
        "mixerd/attribute/global_dictionary.yaml",
        "mixerd/attribute/builtin_manifest.yaml",
        "mixerd_adapters/__init__.py",
    ):
        assert expected in names, expected
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top_level == {"mixerd", "mixerd_adapters"}
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "mixerd = mixerd.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_server_runs_from_the_unpacked_wheel(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import mixerd; print(mixerd.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(site)

    server = subprocess.Popen(
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
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        match = re.search(r"serving istio\.mixer\.v1\.Mixer(?:, \S+)* on ([\d.]+:\d+)", line)
        assert match, line
        with grpc.insecure_channel(match.group(1)) as channel:
            response = mixer_pb2_grpc.MixerStub(channel).Check(mixer_pb2.CheckRequest(), timeout=10)
        assert response.precondition.status.code == 0
        assert response.precondition.valid_use_count == 10000
    finally:
        server.terminate()
        assert server.wait(timeout=15) == 0
