"""`mixerd examples`: lists every bundled example with its description, copies one to edit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mixerd.bundled import rules_folder
from mixerd.cli import main


def test_the_list_names_every_example_with_its_description(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["examples"]) == 0
    lines = capsys.readouterr().out.splitlines()
    folders = sorted(p.name for p in rules_folder("examples").iterdir() if p.is_dir())
    rows = dict(line.split(maxsplit=1) for line in lines[: len(folders)])
    assert sorted(rows) == folders
    assert rows["deny-by-header"].startswith("Deny every request that carries the header `x-user: blocked`")
    assert rows["strikes-adapter"].startswith("`strikes`, a small mixerd adapter")
    assert lines[-1].startswith(f"(in {rules_folder('examples')};")


def test_a_copy_is_a_config_of_its_own(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "my-rules"
    assert main(["examples", "deny-by-header", str(dest)]) == 0
    original = rules_folder("examples") / "deny-by-header"
    assert sorted(p.name for p in dest.iterdir()) == sorted(p.name for p in original.iterdir())
    assert (dest / "deny.yaml").read_bytes() == (original / "deny.yaml").read_bytes()
    capsys.readouterr()
    assert main(["check-config", str(dest)]) == 0
    assert capsys.readouterr().out.startswith("valid: 1 rule")


def test_a_copy_of_envoyproxy_ratelimit_files_is_served_with_ratelimit_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "my-limits"
    assert main(["examples", "ratelimit-upstream", str(dest)]) == 0
    assert (
        capsys.readouterr().out
        == f"copied ratelimit-upstream to {dest}: mixerd serve --ratelimit-config {dest}\n"
    )
    assert main(["check-config", "--ratelimit-config", str(dest)]) == 0
    assert capsys.readouterr().out.endswith(
        "; rate limit domains: db_connections, edge, gateway, routes, sms\n"
    )
    # served as --config by mistake, the files say what they are
    assert main(["check-config", str(dest)]) == 1
    assert capsys.readouterr().out.splitlines()[0] == (
        "databases.yaml (document 1) .apiVersion: missing (Mixer's resources are config.istio.io/v1alpha2); "
        "this is an envoyproxy/ratelimit file: serve its folder with --ratelimit-config"
    )


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["examples", "nope", "x"], "mixerd examples: no example 'nope' (there are: access-log, "),
        (["examples", "deny-by-header"], "mixerd examples: say where to copy it"),
    ],
)
def test_bad_arguments_exit_2(argv: list[str], error: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(error)


def test_an_existing_destination_is_left_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mine.yaml").write_text("# mine\n")
    assert main(["examples", "deny-by-header", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"mixerd examples: {tmp_path} exists; name a folder that does not\n"
    assert [p.name for p in tmp_path.iterdir()] == ["mine.yaml"]


def test_a_reader_that_stops_early_gets_no_traceback() -> None:
    """`mixerd version | true`: the pipe closes under the command, which ends quietly."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mixerd", "version"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # gone before mixerd writes a word, like `| true`
    assert proc.stderr.read() == b""
    assert proc.wait(timeout=60) in (0, 1)
