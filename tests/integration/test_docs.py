"""The commands shown in the README's tour run, against a live server, and do what the text says."""

from __future__ import annotations

import re
import shlex
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mixerd.cli import main

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _shell_lines(markdown: str) -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", markdown, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def _tour_commands(prefix: str) -> list[str]:
    return [line for line, _ in _tour() if line.startswith(prefix)]


def _tour() -> list[tuple[str, str | None]]:
    """Each README shell line with the --config folder of the `./scripts/serve` line before it, as the
    checkout's folder it is a `cp -r` of (None: the embedded default rules)."""
    config = None
    copies: dict[str, str] = {}  # the tour's own copies: destination -> source
    out = []
    for line in _shell_lines((REPO / "README.md").read_text()):
        args = shlex.split(line, comments=True)
        if args[:2] == ["cp", "-r"]:
            copies[args[3]] = args[2]
        if line.startswith("./scripts/serve"):
            config = args[args.index("--config") + 1] if "--config" in args else None
            config = copies.get(config, config) if config else None
        out.append((line, config))
    return out


def test_readme_has_a_tour() -> None:
    assert len(_tour_commands("mixerd check")) >= 2
    assert _tour_commands("mixerd report")
    assert _tour_commands("curl ")


@pytest.mark.parametrize(("line", "config"), [(line, c) for line, c in _tour() if line.startswith("mixerd ")])
def test_readme_mixerd_commands_succeed(
    line: str,
    config: str | None,
    start_mixer_server: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """Each command works against the server the README has running at that point; a trailing
    `# -> TEXT` comment says what its output shows (default: OK). The server serves a copy of the
    folder, as the tour's reader does (and the reader's own edits of it change nothing here)."""
    folder = None
    if config:
        folder = tmp_path / "rules"
        shutil.copytree(REPO / config, folder)
    server = start_mixer_server(config=str(folder) if folder else None)
    command, _, expected = line.partition("# ->")
    argv = [arg.replace("localhost:9091", server.address) for arg in shlex.split(command)[1:]]
    explain = "--explain" in argv
    if explain:  # the admin page of this server, not localhost:9876
        argv += ["--admin", server.admin_url.removeprefix("http://")]
    assert main(argv) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    if argv[0] == "eval":
        assert out.startswith("true (BOOL)")
    elif explain:
        assert f"Check status would be {expected.strip()}" in out and "match held" in out
    else:
        assert f"Check status was {expected.strip()}" in out if expected else "OK" in out


@pytest.mark.parametrize("line", _tour_commands("curl "))
def test_readme_monitoring_urls_answer(line: str, mixer_server) -> None:
    command, _, grep = line.partition("|")
    url = next(arg for arg in shlex.split(command) if arg.startswith("localhost:15014"))
    path = url.removeprefix("localhost:15014")
    with urllib.request.urlopen(mixer_server.monitoring_url + path, timeout=10) as response:
        assert response.status == 200
        body = response.read().decode()
    if grep.strip():
        assert shlex.split(grep)[-1] in body
