"""The examples of docs/admin.md's "Explain a decision" and docs/cli.md's `check --explain` run against the
config they name, and answer exactly what the docs show."""

from __future__ import annotations

import http.client
import json
import re
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mixerd.cli import main

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CONFIG = "rules/examples/deny-by-header"  # what both docs say to serve


def section(doc: str, heading: str) -> str:
    text = (REPO / "docs" / doc).read_text()
    start = text.index(heading)
    end = text.find("\n#", start + len(heading))
    return text[start : end if end >= 0 else None]


def examples(text: str) -> list[tuple[str, str, str]]:
    """(command, its answer's fence language, the answer) for each ```sh block followed by its answer."""
    found = re.findall(r"```sh\n(.*?)```\n\n```(\w*)\n(.*?)```", text, flags=re.S)
    return [(command.replace("\\\n", " ").strip(), lang, answer) for command, lang, answer in found]


@pytest.fixture
def server(start_mixer_server: Callable[..., Any], tmp_path: Path) -> Any:
    folder = tmp_path / "rules"
    shutil.copytree(REPO / CONFIG, folder)
    return start_mixer_server(config=str(folder))


def test_both_docs_serve_the_config_the_examples_need() -> None:
    assert f"mixerd serve --config {CONFIG}" in section("admin.md", "## Explain a decision")
    assert f"mixerd serve --config {CONFIG}" in section("cli.md", "### `check --explain`")


def test_the_curl_example_answers_the_json_shown(server: Any) -> None:
    [(command, _lang, shown)] = [
        e for e in examples(section("admin.md", "## Explain a decision")) if e[1] == "json"
    ]
    args = shlex.split(command)
    assert args[:3] == ["curl", "-s", "localhost:9876/debug/explain"]
    headers = dict([args[args.index("-H") + 1].split(": ", 1)])
    body = args[args.index("-d") + 1]
    host, port = server.admin_url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=20)
    connection.request("POST", "/debug/explain", body, headers)
    answer = connection.getresponse()
    assert answer.status == 200
    assert json.loads(answer.read()) == json.loads(shown)
    connection.close()


@pytest.mark.parametrize(
    ("doc", "heading"), [("admin.md", "## Explain a decision"), ("cli.md", "### `check --explain`")]
)
def test_the_cli_example_prints_the_text_shown(
    server: Any, doc: str, heading: str, capsys: pytest.CaptureFixture[str]
) -> None:
    [(command, _, shown)] = [e for e in examples(section(doc, heading)) if e[0].startswith("mixerd check")]
    argv = [*shlex.split(command)[1:], "--admin", server.admin_url.removeprefix("http://")]
    capsys.readouterr()
    assert main(argv) == 0
    assert capsys.readouterr().out == shown
