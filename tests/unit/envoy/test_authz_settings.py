"""The authz_cache_size and authz_cache_bytes settings: counts, 0 for off, never negative."""

from __future__ import annotations

import argparse

import pytest

from mixerd.settings import Settings, add_arguments, from_namespace


def parse(argv: list[str], environ: dict[str, str] | None = None) -> Settings:
    parser = argparse.ArgumentParser()
    add_arguments(parser, environ or {})
    return from_namespace(parser.parse_args(argv))


def test_the_cache_is_on_with_istios_proxy_size_by_default() -> None:
    assert parse([]).authz_cache_size == 10000


def test_the_byte_budget_is_64_mib_by_default() -> None:
    assert parse([]).authz_cache_bytes == 64 * 1024 * 1024


def test_flag_and_environment() -> None:
    assert parse(["--authz-cache-size", "0"]).authz_cache_size == 0
    assert parse([], {"MIXERD_AUTHZ_CACHE_SIZE": "500"}).authz_cache_size == 500
    assert parse(["--authz-cache-bytes", "1048576"]).authz_cache_bytes == 1 << 20
    assert parse([], {"MIXERD_AUTHZ_CACHE_BYTES": "0"}).authz_cache_bytes == 0


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--authz-cache-size", "-1"], {}, "argument --authz-cache-size: invalid _count value: '-1'"),
        ([], {"MIXERD_AUTHZ_CACHE_SIZE": "-5"}, "MIXERD_AUTHZ_CACHE_SIZE='-5': -5 must not be negative"),
        ([], {"MIXERD_AUTHZ_CACHE_SIZE": "x"}, "MIXERD_AUTHZ_CACHE_SIZE='x': invalid literal for int()"),
        (["--authz-cache-bytes", "-1"], {}, "argument --authz-cache-bytes: invalid _count value: '-1'"),
    ],
)
def test_a_bad_size_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], argv: list[str], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse(argv, environ)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
