"""Shared pytest configuration for mixerd's tests."""

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# tests/peers (the real servers integration tests start) imports as the package `peers`.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mixerd.bundled import rules_folder


@pytest.fixture
def bundled_rules(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`bundled_rules(name)`: a temporary copy of the bundled rule set `rules/<name>`.

    Tests serve copies, never the checkout's rules/: a user following the README's tour edits and serves
    those folders while the suite runs, and neither may disturb the other.
    """

    def copy(name: str) -> Path:
        target = tmp_path_factory.mktemp("rules") / name.replace("/", "-")
        shutil.copytree(rules_folder(name), target, ignore=shutil.ignore_patterns("__pycache__"))
        return target

    return copy
