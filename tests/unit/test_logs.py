"""`mixerd serve`'s logging: mixerd's level apart from the libraries', and JSON lines for pipelines."""

from __future__ import annotations

import json
import logging

import pytest

from mixerd import logs
from mixerd.cli import main


def test_debug_for_mixerd_leaves_grpc_at_its_own_level() -> None:
    logs.configure("debug")
    assert logging.getLogger("mixerd.runtime.dispatcher").isEnabledFor(logging.DEBUG)
    for noisy in ("grpc._cython.cygrpc", "grpc.aio._server", "asyncio", "redis.asyncio.connection"):
        assert not logging.getLogger(noisy).isEnabledFor(logging.INFO), noisy
        assert logging.getLogger(noisy).isEnabledFor(logging.WARNING), noisy
    logs.configure("info", "debug")
    assert logging.getLogger("grpc._cython.cygrpc").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("mixerd.runtime").isEnabledFor(logging.DEBUG)


def test_json_lines_carry_time_level_logger_message_extras_and_the_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("info", fmt="json")
    log = logging.getLogger("mixerd.test")
    log.info("config %d in force", 3, extra={"generation": 3})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("reloading failed")
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert first["time"].endswith("+00:00") and len(first["time"]) == len("2026-12-07T03:56:35.522+00:00")
    assert {k: first[k] for k in ("level", "logger", "message", "generation")} == {
        "level": "info",
        "logger": "mixerd.test",
        "message": "config 3 in force",
        "generation": 3,
    }
    assert second["level"] == "error" and second["exception"].endswith("ValueError: boom")


@pytest.mark.parametrize(
    ("flag", "value", "error"),
    [
        ("--log-level", "loud", "--log-level 'loud': use one of debug, info, warning, error"),
        ("--log-level-grpc", "chatty", "--log-level-grpc 'chatty': use one of debug, info, warning, error"),
        ("--log-format", "xml", "--log-format 'xml': use one of text, json"),
    ],
)
def test_bad_log_settings_exit_2(
    flag: str, value: str, error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", flag, value]) == 2
    assert capsys.readouterr().err == f"mixerd serve: error: {error}\n"
