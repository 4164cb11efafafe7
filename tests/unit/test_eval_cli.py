"""`mixerd eval`: attribute flags typed by the manifest, value and type out, errors and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixerd.cli import main


def _eval_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(["eval", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_value_type_and_references(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _eval_json(
        capsys,
        'request.headers["x-user"] | "" == "admin" && request.size > 5',
        "--stringmap",
        "request.headers=x-user:admin",
        "-a",
        "request.size=10",
    )
    assert code == 0
    assert out["value"] is True and out["type"] == "BOOL"
    assert out["referenced"] == [
        {"name": "request.headers", "condition": "EXACT", "key": "x-user"},
        {"name": "request.size", "condition": "EXACT", "key": None},
    ]


def test_untyped_attributes_take_the_manifest_type(capsys: pytest.CaptureFixture[str]) -> None:
    # Guessing would make "10" an INT64 and "10.0.0.1" a string; the manifest says STRING and IP_ADDRESS.
    code, out = _eval_json(capsys, "request.path", "-a", "request.path=10")
    assert (code, out["value"], out["type"]) == (0, "10", "STRING")
    code, out = _eval_json(capsys, "source.ip", "-a", "source.ip=10.0.0.1")
    assert (code, out["value"], out["type"]) == (0, "10.0.0.1", "IP_ADDRESS")


def test_ip_shows_its_16_byte_form(capsys: pytest.CaptureFixture[str]) -> None:
    """ip() gives Go's 16-byte form (what an adapter receives): eval shows it, and it equals 4 bytes."""
    code, out = _eval_json(capsys, 'source.ip | ip("1.2.3.4")')
    assert (code, out["value"], out["type"]) == (0, "::ffff:1.2.3.4", "IP_ADDRESS")
    code, out = _eval_json(capsys, 'ip("::ffff:1.2.3.4") == source.ip', "-a", "source.ip=1.2.3.4")
    assert (code, out["value"]) == (0, True)


def test_durations_and_timestamps_print_in_their_text_forms(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _eval_json(capsys, "response.duration", "-a", "response.duration=1500ms")
    assert (code, out["value"], out["type"]) == (0, "1.5s", "DURATION")
    code, out = _eval_json(capsys, "request.time", "-a", "request.time=2026-11-20T10:00:00.5Z")
    assert (code, out["value"], out["type"]) == (0, "2026-11-20T10:00:00.5Z", "TIMESTAMP")


def test_absent_attribute_is_an_error_with_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _eval_json(capsys, "request.path")
    assert code == 1
    assert out == {"error": "lookup failed: 'request.path'"}


def test_compile_errors_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _eval_json(capsys, "no.such.attribute == 1")
    assert code == 1
    assert "unknown attribute no.such.attribute" in out["error"]
    assert main(["eval", "request.size == true"]) == 1
    assert capsys.readouterr().out.startswith("error: ")


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "request.size + 1", "-i", "request.size=41"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["42 (INT64)", "  request.size EXACT"]


def test_config_folder_adds_manifests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "attrs.yaml").write_text(
        "apiVersion: config.istio.io/v1alpha2\nkind: attributemanifest\nmetadata: {name: extra}\n"
        "spec:\n  attributes:\n    shop.cart.items: {valueType: INT64}\n"
    )
    code, out = _eval_json(
        capsys, "shop.cart.items >= 3", "-a", "shop.cart.items=3", "--config", str(tmp_path)
    )
    assert (code, out["value"]) == (0, True)


def test_bad_config_folder_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.yaml").write_text(
        "kind: attributemanifest\nspec:\n  attributes:\n    a.b: {valueType: NUMBER}\n"
    )
    assert main(["eval", "true", "--config", str(tmp_path)]) == 2
    assert "bad.yaml" in capsys.readouterr().err
    assert main(["eval", "true", "--config", str(tmp_path / "missing")]) == 2


def test_bad_attribute_value_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "request.size", "-a", "request.size=ten"]) == 2
    assert "-a: 'request.size=ten'" in capsys.readouterr().err
    assert main(["eval", "request.size", "-i", "request.size=ten"]) == 2
    assert capsys.readouterr().err == "mixerd eval: -i: 'request.size=ten': 'ten' is not an int64\n"


def test_config_manifest_problems_are_all_listed_and_other_kinds_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rules.yaml").write_text(  # not a manifest: eval does not look at it
        "apiVersion: config.istio.io/v1alpha2\nkind: denier\nmetadata: {name: d}\nspec: {bogus: 1}\n"
    )
    (tmp_path / "attrs.yaml").write_text(
        "apiVersion: config.istio.io/v1alpha2\nkind: attributemanifest\nmetadata: {name: extra}\n"
        "spec:\n  attributes:\n    a.one: {valueType: NUMBER}\n    a.two: {valueType: TEXT}\n"
    )
    assert main(["eval", "true", "--config", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("attrs.yaml: attributemanifest 'extra.attributemanifest.istio-system'") == 2
    assert "a.one" in err and "a.two" in err and "rules.yaml" not in err
