"""The bundled rules do what their comments say: each `mixerd check/report` line is run against a real
server serving that folder, and its `-> expectation` is checked."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mixerd.bundled import rules_folder
from mixerd.cli import main
from mixerd.commands.examples import is_ratelimit_folder
from mixerd.config import load_snapshot
from mixerd.plugins import load_adapters

_COMMAND = re.compile(r"^#\s+(mixerd (?:check|report) .*?)\s+->\s+(.*)$")
_RESULT = re.compile(r"^#\s+->\s+(\S+) gains (\{.*\})$")


def commented_commands(folder: Path) -> list[tuple[list[str], str]]:
    """(argv after `mixerd`, expectation) for each documented command line in the folder's YAML."""
    out = []
    for path in sorted(folder.glob("*.yaml")):
        for line in path.read_text().splitlines():
            found = _COMMAND.match(line)
            if found:
                out.append((shlex.split(found.group(1))[1:], found.group(2).strip()))
    return out


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str], address: str) -> dict[str, Any]:
    capsys.readouterr()
    code = main([*argv, "-m", address, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def test_istio_folder_is_istios_config_unchanged() -> None:
    """rules/istio/ holds the rendered Istio 1.4 config as it is (the same file the config tests load)."""
    ours = (rules_folder("istio") / "telemetry.yaml").read_bytes()
    reference = (
        Path(__file__).resolve().parents[1] / "data/config/istio/istio-default-telemetry-config.rendered.yaml"
    )
    assert ours == reference.read_bytes()


@pytest.fixture
def examples(bundled_rules: Callable[[str], Path]) -> Path:
    """A copy of rules/examples/ (see bundled_rules)."""
    return bundled_rules("examples")


def config_examples(examples: Path) -> list[Path]:
    """The examples that are config folders (the others are packages: a pyproject.toml and no YAML; or
    envoyproxy/ratelimit files, which test_envoy_ratelimit_files.py serves)."""
    folders = sorted(p for p in examples.iterdir() if p.is_dir())
    packages = [p for p in folders if (p / "pyproject.toml").is_file()]
    assert [p.name for p in packages] == ["strikes-adapter"]
    limits = [p for p in folders if is_ratelimit_folder(p)]
    assert [p.name for p in limits] == ["ratelimit-upstream"]
    return [p for p in folders if p not in packages and p not in limits]


def test_default_istio_and_every_example_load(examples: Path) -> None:
    adapters = load_adapters()
    for folder in [rules_folder(), rules_folder("istio"), *config_examples(examples)]:
        snapshot = load_snapshot(folder, adapters)
        assert snapshot.rules, folder


@pytest.mark.parametrize("example", ["deny-by-header", "ip-whitelist"])
def test_check_examples(
    example: str, examples: Path, start_mixer_server: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_mixer_server(config=str(examples / example))
    commands = commented_commands(examples / example)
    assert len(commands) == 2
    for argv, expected in commands:
        result = run_json(capsys, argv, server.address)
        assert result["code"] == expected, (argv, result)
        if expected != "OK":
            assert result["message"].startswith(("deny-blocked.handler.istio-system:", "trusted-networks."))


def test_rate_limit_example(
    examples: Path, start_mixer_server: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_mixer_server(config=str(examples / "rate-limit-per-user"))
    [(argv, expected)] = commented_commands(examples / "rate-limit-per-user")
    assert expected == "granted 1, 3 times; then 0"
    granted = [
        run_json(capsys, argv, server.address)["quotas"]["requestcount"]["granted_amount"] for _ in range(4)
    ]
    assert granted == [1, 1, 1, 0]
    # Another user has a budget of their own; the vip override allows more.
    other = [a.replace("x-user:bob", "x-user:vip") for a in argv]
    assert [
        run_json(capsys, other, server.address)["quotas"]["requestcount"]["granted_amount"] for _ in range(5)
    ] == [1] * 5


def test_access_log_example(
    tmp_path: Path, examples: Path, start_mixer_server: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    text = (examples / "access-log" / "accesslog.yaml").read_text()
    [documented] = [m for line in text.splitlines() if (m := _RESULT.match(line))]
    log = tmp_path / "access.log"
    folder = tmp_path / "config"
    shutil.copytree(examples / "access-log", folder)
    (folder / "accesslog.yaml").write_text(text.replace(documented.group(1), str(log)))
    server = start_mixer_server(config=str(folder))
    [(argv, _)] = commented_commands(folder)
    assert run_json(capsys, argv, server.address)["code"] == "OK"
    server.stop()  # closing the handler flushes the file
    [line] = log.read_text().splitlines()
    entry = json.loads(line)
    expected = json.loads(documented.group(2).replace("...,", ""))
    assert {k: entry[k] for k in expected} == expected
