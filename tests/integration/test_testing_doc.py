"""docs/testing.md's example scenario passes as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mixerd.testing_scenarios import check_scenario

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def test_the_documented_scenario_passes(tmp_path: Path) -> None:
    [scenario] = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    path = tmp_path / "blocked_users.yaml"
    path.write_text(scenario)
    check_scenario(path, tmp_path / "work")


def test_the_documented_scenario_passes_through_the_plugins_fixture(
    mixerd_scenario: Any, tmp_path: Path
) -> None:
    [scenario] = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    path = tmp_path / "blocked_users.yaml"
    path.write_text(scenario)
    mixerd_scenario(path)
