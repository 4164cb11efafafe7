"""Settings: documented in docs/settings.md, and defaults < environment < flags."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from mixerd import cli
from mixerd.settings import SETTINGS, Setting, Settings, add_arguments, from_namespace

DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def documented_rows() -> dict[str, list[str]]:
    """Setting name -> the other cells of its row in the docs/settings.md table."""
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 5 and re.fullmatch(r"[a-z_]+", cells[0]):
            rows[cells[0]] = cells[1:]
    return rows


def documented_default(default: object) -> str:
    return "unset" if default is None else f"`{default}`"


def test_every_setting_is_documented_and_nothing_else() -> None:
    assert set(documented_rows()) == {s.name for s in SETTINGS}


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_the_documented_flag_variable_and_default_are_the_real_ones(setting: Setting) -> None:
    flag, env_var, default, meaning = documented_rows()[setting.name]
    assert flag == f"`{setting.flag}`"
    assert env_var == f"`{setting.env_var}`"
    assert default == documented_default(setting.default)
    assert meaning


def parse(argv: list[str], environ: dict[str, str]) -> Settings:
    parser = argparse.ArgumentParser()
    add_arguments(parser, environ)
    return from_namespace(parser.parse_args(argv))


def test_defaults_apply_without_flags_or_environment() -> None:
    assert parse([], {}) == Settings()


def test_environment_overrides_defaults() -> None:
    settings = parse([], {"MIXERD_PORT": "7000", "MIXERD_SHUTDOWN_GRACE": "2.5", "MIXERD_CONFIG": "rules"})
    assert (settings.port, settings.shutdown_grace, settings.config) == (7000, 2.5, "rules")
    assert settings.monitoring_port == Settings().monitoring_port


def test_flags_override_environment() -> None:
    settings = parse(
        ["--port", "8000", "--log-level", "debug"], {"MIXERD_PORT": "7000", "MIXERD_LOG_LEVEL": "error"}
    )
    assert (settings.port, settings.log_level) == (8000, "debug")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MIXERD_PORT", "abc", "MIXERD_PORT='abc': invalid literal for int()"),
        ("MIXERD_MONITORING_PORT", "70000", "MIXERD_MONITORING_PORT='70000': port 70000 is outside 0..65535"),
        ("MIXERD_SHUTDOWN_GRACE", "-1", "MIXERD_SHUTDOWN_GRACE='-1': -1.0 must not be negative"),
    ],
)
def test_a_bad_environment_value_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], variable: str, value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse([], {variable: value})
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_serve_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIXERD_MONITORING_PORT", "15999")
    args = cli.build_parser().parse_args(["serve", "--port", "0"])
    settings = from_namespace(args)
    assert (settings.port, settings.monitoring_port) == (0, 15999)
    assert callable(args.run)


def test_ratelimit_switches_read_as_envoyproxy_ratelimits_variables() -> None:
    """true/false as Go's strconv.ParseBool reads them (envoyproxy/ratelimit's envconfig)."""
    for text, value in [
        ("true", True),
        ("1", True),
        ("T", True),
        ("False", False),
        ("0", False),
        ("f", False),
    ]:
        assert parse([], {"MIXERD_RATELIMIT_SHADOW_MODE": text}).ratelimit_shadow_mode is value
    settings = parse(
        ["--ratelimit-quota-mode", "true", "--ratelimit-statsd-address", "[::1]:8125"],
        {"MIXERD_RATELIMIT_NEAR_LIMIT_RATIO": "0.5", "MIXERD_RATELIMIT_CONFIG": "limits"},
    )
    assert settings.ratelimit_quota_mode and settings.ratelimit_near_limit_ratio == 0.5
    assert (settings.ratelimit_statsd_address, settings.ratelimit_config) == ("[::1]:8125", "limits")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MIXERD_RATELIMIT_SHADOW_MODE", "yes", "expected true or false, got 'yes'"),
        ("MIXERD_RATELIMIT_NEAR_LIMIT_RATIO", "1.5", "1.5 is not between 0 and 1"),
        ("MIXERD_RATELIMIT_STATSD_ADDRESS", "statsd", "expected host:port (an IPv6 host in brackets)"),
        ("MIXERD_RATELIMIT_STATSD_ADDRESS", "::1:8125", "expected host:port (an IPv6 host in brackets)"),
        ("MIXERD_RATELIMIT_STATSD_ADDRESS", "statsd:70000", "expected host:port"),
        ("MIXERD_RATELIMIT_STATS_FLUSH_INTERVAL", "0", "0.0 must be more than 0"),
    ],
)
def test_bad_ratelimit_values_are_clear_errors(
    capsys: pytest.CaptureFixture[str], variable: str, value: str, message: str
) -> None:
    with pytest.raises(SystemExit):
        parse([], {variable: value})
    assert message in capsys.readouterr().err


def test_the_admin_port_is_local_by_default_and_minus_one_turns_it_off() -> None:
    assert (Settings().admin_port, Settings().admin_address) == (9876, "127.0.0.1")
    assert parse(["--admin-port", "-1"], {}).admin_port == -1
    assert parse([], {"MIXERD_ADMIN_PORT": "0", "MIXERD_ADMIN_ADDRESS": "::1"}).admin_address == "::1"
    with pytest.raises(SystemExit):
        parse(["--admin-port", "-2"], {})
