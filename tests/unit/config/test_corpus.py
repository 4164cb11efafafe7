"""Every folder under tests/data/config: bad cases print exactly their expected problems, good ones load.

`expected.txt` holds the lines `mixerd check-config <folder>` prints; `{installed_adapters}` stands for
the installed adapters' names (so adding an adapter does not rewrite the corpus).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mixerd.cli import main
from mixerd.plugins import adapter_origins, load_adapters, make_plugin_manager

DATA = Path(__file__).resolve().parents[2] / "data" / "config"
BAD = sorted(p for p in (DATA / "bad").iterdir() if p.is_dir())
GOOD = sorted(p for p in (DATA / "good").iterdir() if p.is_dir())


def expected_lines(case: Path) -> list[str]:
    text = (case / "expected.txt").read_text(encoding="utf-8")
    return text.replace("{installed_adapters}", ", ".join(load_adapters())).splitlines()


def test_the_corpus_covers_every_failure_mode() -> None:
    names = {p.name for p in BAD}
    assert len(names) >= 35
    assert {"yaml_syntax_error", "many_problems_in_many_files", "memquota_quota_not_configured"} <= names


@pytest.mark.parametrize("case", BAD, ids=lambda p: p.name)
def test_bad_config_prints_every_problem(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(case)]) == 1
    out, err = capsys.readouterr()
    expected = expected_lines(case)
    assert expected, "a bad case needs at least one expected problem"
    assert out.splitlines() == expected
    problems = f"{len(expected)} problem{'s' * (len(expected) != 1)}"
    assert err == f"mixerd check-config: {case}: {problems}; rejected whole\n"


@pytest.mark.parametrize("case", GOOD, ids=lambda p: p.name)
def test_good_config_loads(case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(case)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == expected_lines(case)
    assert err == ""


def test_json_errors_carry_every_part_of_the_message(capsys: pytest.CaptureFixture[str]) -> None:
    case = DATA / "bad" / "many_problems_in_many_files"
    assert main(["check-config", str(case), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is False and out["summary"] is None
    assert [e["message"] for e in out["errors"]] == expected_lines(case)
    assert out["errors"][1] == {
        "file": "handlers.yaml",
        "document": 2,
        "item": None,
        "kind": "handler",
        "resource": "deny.handler.istio-system",
        "path": ".spec.params.validDuration",
        "reason": "expected a duration such as '1s' or '500ms', got 'ten'",
        "message": "handlers.yaml: handler 'deny.handler.istio-system' .spec.params.validDuration: "
        "expected a duration such as '1s' or '500ms', got 'ten'",
    }
    syntax = next(e for e in out["errors"] if e["file"] == "rules/broken.yml")
    assert syntax == {
        "file": "rules/broken.yml",
        "document": 1,
        "item": None,
        "kind": "",
        "resource": "",
        "path": "",
        "reason": "YAML syntax error: line 8 column 10: mapping values are not allowed in this context",
        "message": "rules/broken.yml (document 1): YAML syntax error: line 8 column 10: "
        "mapping values are not allowed in this context",
    }


def test_one_good_folder_uses_every_built_in_adapter() -> None:
    """every_builtin_adapter/ (the install test checks it from a fresh wheel) keeps up with the built-ins."""
    case = DATA / "good" / "every_builtin_adapter"
    text = "\n".join(p.read_text(encoding="utf-8") for p in case.glob("*.yaml"))
    used = set(re.findall(r"^\s*compiledAdapter: (\S+)$", text, flags=re.M))
    builtin = {name for name, origin in adapter_origins(make_plugin_manager()).items() if origin.builtin}
    assert used == builtin
