"""Shared pytest configuration for mixerd's tests."""

import logging
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# tests/peers (the real servers integration tests start) imports as the package `peers`.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mixerd.bundled import rules_folder
from mixerd.logs import LIBRARY_LOGGERS


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


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Put the logging set-up back after each test: a test that runs `mixerd serve` in-process has
    logs.configure() point the root logger at that test's captured stderr, which is closed once the
    test ends, and a later log line (a TLS handshake failure gRPC logs) then fails with "--- Logging
    error ---" on the stderr of whichever test runs then."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    libraries = {name: logging.getLogger(name).level for name in LIBRARY_LOGGERS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, library_level in libraries.items():
        logging.getLogger(name).setLevel(library_level)
