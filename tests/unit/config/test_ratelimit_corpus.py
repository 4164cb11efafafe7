"""Every case under tests/data/ratelimit: envoyproxy/ratelimit's own files (the `ratelimit_config`
folder), checked with `mixerd check-config` from inside the case folder:

    mixerd check-config [config] --ratelimit-config ratelimit [the arguments in args.txt]

`config/` is the case's --config folder when it has one (otherwise the embedded default rules stand in,
as with `mixerd serve`). Bad cases print exactly the lines of their `expected.txt`; good ones print
their summary line.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from mixerd.cli import main

DATA = Path(__file__).resolve().parents[2] / "data" / "ratelimit"
BAD = sorted(p for p in (DATA / "bad").iterdir() if p.is_dir())
GOOD = sorted(p for p in (DATA / "good").iterdir() if p.is_dir())


def check(case: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.chdir(case)
    args = shlex.split((case / "args.txt").read_text()) if (case / "args.txt").exists() else []
    config = ["config"] if (case / "config").is_dir() else []
    return main(["check-config", *config, "--ratelimit-config", "ratelimit", *args])


def test_the_corpus_covers_envoyproxy_ratelimits_failure_modes() -> None:
    names = {p.name for p in BAD}
    # upstream's own test configs' failure modes, by what they break
    assert {
        "yaml_syntax_error",
        "missing_domain",
        "duplicate_domain",
        "missing_key",
        "duplicate_descriptor",
        "bad_limit_unit",
        "replaces_itself",
        "replaces_empty_name",
        "misspelled_field",
        "not_mappings",
        "unlimited_with_unit",
        "share_threshold_without_wildcard",
        "merged_duplicate_descriptor",
    } <= names


@pytest.mark.parametrize("case", BAD, ids=lambda p: p.name)
def test_bad_files_print_every_problem(
    case: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check(case, monkeypatch) == 1
    out, err = capsys.readouterr()
    expected = (case / "expected.txt").read_text(encoding="utf-8").splitlines()
    assert expected, "a bad case needs at least one expected problem"
    assert out.splitlines() == expected
    assert err.endswith(f": {len(expected)} problem{'s' * (len(expected) != 1)}; rejected whole\n")


@pytest.mark.parametrize("case", GOOD, ids=lambda p: p.name)
def test_good_files_load(
    case: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check(case, monkeypatch) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == (case / "expected.txt").read_text(encoding="utf-8").splitlines()
    assert err == ""
