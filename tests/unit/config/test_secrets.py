"""`${env:NAME}` and `${file:/path}` in handler params: resolved at load, errors that name the place and
the reference but never a value, and a resolved string that prints as written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mixerd.cli import main
from mixerd.config.secrets import MAX_SECRET_BYTES, ReadSecret, SecretText, resolve

ENV = {"REDIS_PASSWORD": "hunter2", "EMPTY": ""}


def _resolve(
    raw: object, env: dict[str, str] = ENV
) -> tuple[object, list[tuple[str, str]], dict[str, ReadSecret]]:
    problems: list[tuple[str, str]] = []
    read: dict[str, ReadSecret] = {}
    return resolve(raw, ".spec.params", problems, read, env), problems, read


def test_references_inside_text_resolve_and_print_as_written(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("abc.def\n")  # a Secret file written with a newline
    raw = {
        "url": "redis://:${env:REDIS_PASSWORD}@redis:6379",
        "headers": {"authorization": f"Bearer ${{file:{token}}}"},
        "hosts": ["a", "${env:EMPTY}"],
        "plain": "no references",
        "port": 6379,
    }
    params, problems, read = _resolve(raw)
    assert problems == []
    assert params == {
        "url": "redis://:hunter2@redis:6379",
        "headers": {"authorization": "Bearer abc.def"},
        "hosts": ["a", ""],
        "plain": "no references",
        "port": 6379,
    }
    url = params["url"]  # type: ignore[index]
    assert isinstance(url, SecretText) and str(url) == "redis://:hunter2@redis:6379"
    assert repr(url) == "'redis://:${env:REDIS_PASSWORD}@redis:6379'"
    assert f"got {url!r}" == "got 'redis://:${env:REDIS_PASSWORD}@redis:6379'"
    assert type(params["plain"]) is str  # type: ignore[index]
    assert list(read) == [str(token)]


def test_a_literal_dollar_brace_is_written_twice() -> None:
    params, problems, _ = _resolve({"template": "cost: $${amount}"})
    assert (params, problems) == ({"template": "cost: ${amount}"}, [])


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("${env:NOPE}", "${env:NOPE}: the environment variable NOPE is not set"),
        ("${env:}", "${env:}: name the environment variable"),
        ("${file:relative/path}", "${file:relative/path}: the path must be absolute"),
        ("${file:/no/such/secret}", "${file:/no/such/secret}: cannot be read: No such file or directory"),
        ("${vault:x}", "'${' starts no reference: write ${env:NAME}, ${file:/path} or $${"),
    ],
)
def test_unresolvable_references_name_the_place_and_the_reference(value: str, reason: str) -> None:
    _, problems, _ = _resolve({"password": value})
    assert problems == [(".spec.params.password", reason)]


def test_a_secret_file_must_be_a_small_regular_file(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * (MAX_SECRET_BYTES + 1))
    _, problems, _ = _resolve({"a": f"${{file:{big}}}", "b": f"${{file:{tmp_path}}}"})
    assert problems == [
        (".spec.params.a", f"${{file:{big}}}: larger than {MAX_SECRET_BYTES} bytes"),
        (".spec.params.b", f"${{file:{tmp_path}}}: not a regular file"),
    ]


HANDLER = """\
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: quota, namespace: istio-system}
spec:
  compiledAdapter: memquota
  params:
    quotas:
    - name: requestcount.instance.istio-system
      maxAmount: "${env:MIXERD_TEST_AMOUNT}"
      validDuration: 1s
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: requestcount, namespace: istio-system}
spec: {compiledTemplate: quota}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: quota, namespace: istio-system}
spec:
  actions: [{handler: quota, instances: [requestcount]}]
"""


def test_check_config_resolves_and_never_prints_the_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "quota.yaml").write_text(HANDLER)
    monkeypatch.delenv("MIXERD_TEST_AMOUNT", raising=False)
    assert main(["check-config", str(tmp_path)]) == 1
    assert capsys.readouterr().out == (
        "quota.yaml: handler 'quota.handler.istio-system' .spec.params.quotas[0].maxAmount: "
        "${env:MIXERD_TEST_AMOUNT}: the environment variable MIXERD_TEST_AMOUNT is not set\n"
    )
    monkeypatch.setenv(
        "MIXERD_TEST_AMOUNT", "ten-secret-apples"
    )  # a bad value: its error shows the reference
    assert main(["check-config", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out == (
        "quota.yaml: handler 'quota.handler.istio-system' .spec.params.quotas[0].maxAmount: "
        "expected an integer, got '${env:MIXERD_TEST_AMOUNT}'\n"
    )
    assert "ten-secret-apples" not in out
    monkeypatch.setenv("MIXERD_TEST_AMOUNT", "100")
    assert main(["check-config", str(tmp_path)]) == 0
    assert os.environ["MIXERD_TEST_AMOUNT"] not in capsys.readouterr().out.split()
