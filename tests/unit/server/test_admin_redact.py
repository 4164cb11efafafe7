"""The admin page never shows a secret written in the config: URL passwords and secret-named keys."""

from __future__ import annotations

import pytest

from mixerd.server.admin.redact import redact


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("redisServerUrl: redis://:hunter2@redis:6379/0", "redisServerUrl: redis://:***@redis:6379/0"),
        ("url: rediss://user:p%40ss@h:1", "url: rediss://user:***@h:1"),
        ("url: redis://redis:6379/0", "url: redis://redis:6379/0"),  # no password: nothing to hide
        ("sentinelPassword: hunter2   # the Sentinels'", "sentinelPassword: ***   # the Sentinels'"),
        ("  - password: a,b]{c", "  - password: ***"),  # a plain scalar runs to the end of the line
        ("authorization: 'Bearer abc'", "authorization: ***"),
        (
            'headers: {"x-api-key": "abc", keep: 1, token: x}',
            'headers: {"x-api-key": ***, keep: 1, token: ***}',
        ),
        ("password: ${env:REDIS_PASSWORD}", "password: ${env:REDIS_PASSWORD}"),  # a reference stays
        ("p: {secret: ${env:S}, cookie: c}", "p: {secret: ${env:S}, cookie: ***}"),
        ("maxAmount: 5", "maxAmount: 5"),
        ('match: request.headers["authorization"] == "x"', 'match: request.headers["authorization"] == "x"'),
        ("tokens:", "tokens:"),
    ],
)
def test_secrets_are_shown_as_stars(written: str, shown: str) -> None:
    assert redact(written + "\n") == shown + "\n"


def test_a_secret_block_scalar_is_hidden_line_by_line() -> None:
    written = "params:\n  token: |\n    line one\n\n    line two\n  after: kept\n"
    assert redact(written) == "params:\n  token: |\n    ***\n\n    ***\n  after: kept\n"


def test_a_message_quoting_a_url_loses_its_password() -> None:
    assert redact("bad redisServerUrl 'redis://u:pw@h:x'") == "bad redisServerUrl 'redis://u:***@h:x'"
