"""`mixerd check-config`: exit codes, the summary, --json and --config-default-namespace."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mixerd.cli import main

DATA = Path(__file__).resolve().parents[2] / "data" / "config"

_NO_NAMESPACE = """
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata:
  name: deny
  namespace: policies
spec:
  compiledAdapter: denier
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata:
  name: nothing
  namespace: policies
spec:
  compiledTemplate: checknothing
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata:
  name: deny-all   # no namespace: the default config namespace
spec:
  actions:
  - handler: deny
    instances: [nothing]
"""


def test_a_missing_folder_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    assert main(["check-config", str(missing)]) == 2
    assert capsys.readouterr() == ("", f"mixerd check-config: error: {missing}: not a folder\n")
    a_file = tmp_path / "rules.yaml"
    a_file.write_text("")
    assert main(["check-config", str(a_file), "--json"]) == 2
    assert capsys.readouterr() == ("", f"mixerd check-config: error: {a_file}: not a folder\n")


def test_an_empty_folder_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(tmp_path)]) == 0
    assert capsys.readouterr().out == (
        "valid: 0 rules, 0 instances, 0 handlers in use, 0 attribute manifests; resources by kind: none\n"
    )


def test_json_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(DATA / "good" / "legacy_kinds"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "valid": True,
        "errors": [],
        "summary": {
            "rules": 1,
            "instances": 2,
            "handlers_used": 2,
            "attribute_manifests": 0,
            "resources_by_kind": {
                "checknothing": 1,
                "denier": 1,
                "listchecker": 1,
                "listentry": 1,
                "rule": 1,
            },
            "rate_limit_domains": [],
        },
    }


def test_the_default_namespace_decides_where_references_look(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.yaml").write_text(_NO_NAMESPACE)
    monkeypatch.delenv("MIXERD_CONFIG_DEFAULT_NAMESPACE", raising=False)
    assert main(["check-config", str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "config.yaml: rule 'deny-all.rule.istio-system' .spec.actions[0].handler: handler 'deny' not found "
        "(looked for 'deny.handler.istio-system')",
        "config.yaml: rule 'deny-all.rule.istio-system' .spec.actions[0].instances[0]: instance 'nothing' "
        "not found (looked for 'nothing.instance.istio-system')",
    ]
    assert main(["check-config", str(tmp_path), "--config-default-namespace", "policies"]) == 0
    assert capsys.readouterr().out.startswith("valid: 1 rule, 1 instance, 1 handler in use, ")
    # the same environment variable as `mixerd serve`
    monkeypatch.setenv("MIXERD_CONFIG_DEFAULT_NAMESPACE", "policies")
    assert main(["check-config", str(tmp_path)]) == 0
    capsys.readouterr()


def test_the_size_limits_are_serve_s_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.yaml").write_text(_NO_NAMESPACE)
    size = len(_NO_NAMESPACE)
    monkeypatch.delenv("MIXERD_CONFIG_MAX_FILE_BYTES", raising=False)
    assert main(["check-config", str(tmp_path), "--config-default-namespace", "policies"]) == 0
    capsys.readouterr()
    too_small = [f"--config-max-file-bytes={size - 1}", "--config-default-namespace=policies"]
    assert main(["check-config", str(tmp_path), *too_small]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"config.yaml: {size} bytes, more than the {size - 1}-byte limit (config_max_file_bytes)"
    ]
    monkeypatch.setenv("MIXERD_CONFIG_MAX_TOTAL_BYTES", str(size - 1))
    assert main(["check-config", str(tmp_path), "--config-default-namespace=policies"]) == 1
    assert f"more than the {size - 1}-byte limit (config_max_total_bytes)" in capsys.readouterr().out


def test_a_broken_adapter_plugin_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mixerd.commands import check_config
    from mixerd.plugins import PluginError

    def broken() -> None:
        raise PluginError("adapter plugin 'x': mixerd_adapter_info failed: boom")

    monkeypatch.setattr(check_config, "load_adapters", broken)
    assert main(["check-config", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        "mixerd check-config: error: adapter plugin 'x': mixerd_adapter_info failed: boom\n"
    )


def test_the_documented_summary_is_what_check_config_prints(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, bundled_rules: Callable[[str], Path]
) -> None:
    repo = Path(__file__).resolve().parents[3]
    doc = (repo / "docs" / "cli.md").read_text(encoding="utf-8")
    section = doc[doc.index("## `mixerd check-config`") :]
    lines = section.splitlines()
    command = lines.index("$ mixerd check-config rules/istio")
    monkeypatch.chdir(bundled_rules("istio").parent)  # a copy: the checkout's may be mid-edit
    assert main(["check-config", "istio"]) == 0
    assert capsys.readouterr().out == lines[command + 1] + "\n"


def test_envoyproxy_ratelimit_files_alone_or_with_a_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    limits = tmp_path / "limits"
    limits.mkdir()
    (limits / "edge.yaml").write_text("domain: edge\ndescriptors: [{key: a, rate_limit: {unit: second}}]\n")
    assert main(["check-config", "--ratelimit-config", str(limits)]) == 1
    out, err = capsys.readouterr()
    assert out == (
        f"{limits}/edge.yaml .descriptors[0].rate_limit.requests_per_unit: missing: how many requests each "
        "unit allows (0 blocks every request)\n"
    )
    assert err == f"mixerd check-config: {limits}: 1 problem; rejected whole\n"
    (limits / "edge.yaml").write_text("domain: edge\ndescriptors: [{key: a}]\n")
    assert main(["check-config", str(tmp_path / "limits"), "--ratelimit-config", str(limits), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["errors"][0]["message"].startswith("edge.yaml (document 1)")
    assert main(["check-config", "--ratelimit-config", str(limits), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["rate_limit_domains"] == ["edge"]


def test_neither_a_folder_nor_ratelimit_files_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config"]) == 2
    assert (
        capsys.readouterr().err == "mixerd check-config: error: give DIR, --ratelimit-config RLDIR, or both\n"
    )
