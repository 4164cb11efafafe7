"""mixerd's pytest plugin: it costs a project that does not ask for it nothing (no mixerd module but the
plugin's own is imported, no fixture appears), and a project that names its adapter modules gets the
fixtures, the scenario runner and the conformance checks by adapter name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mixerd.testing.conformance import CHECKS

pytest_plugins = ["pytester"]

ADAPTER = """
from dataclasses import dataclass

from mixerd.adapter import AdapterInfo, CheckResult, Code, hookimpl


@dataclass
class Params:
    deny: str = ""


class Handler:
    def __init__(self, env):
        self.deny = env.params.deny

    def handle_listentry(self, instance):
        if instance.value and instance.value == self.deny:
            return CheckResult(status=Code.PERMISSION_DENIED, message=f"{instance.value} is denied")
        return CheckResult()


@hookimpl
def mixerd_adapter_info():
    return AdapterInfo("denyone", ("listentry",), Params, Handler, description="denies one value")
"""

CONFIG = """
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: deny, namespace: istio-system}
spec: {compiledAdapter: denyone, params: {deny: bob}}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: user, namespace: istio-system}
spec:
  compiledTemplate: listentry
  params: {value: 'request.headers["x-user"] | ""'}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: deny-one, namespace: istio-system}
spec: {actions: [{handler: deny, instances: [user]}]}
"""

SCENARIO = """
config: |
{config}
calls:
- check: {{attributes: {{request.headers: {{x-user: bob}}}}}}
  expect: {{code: PERMISSION_DENIED, message: "deny.handler.istio-system:bob is denied"}}
- check: {{attributes: {{request.headers: {{x-user: alice}}}}}}
  expect: {{code: {alice}}}
"""


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}


def _mixerd_modules(cwd: Path, *args: str) -> list[str]:
    """mixerd's modules loaded once `pytest <args>` has run in `cwd` (in a fresh interpreter)."""
    script = (
        "import json, sys, pytest\n"
        f"pytest.main({list(args)!r})\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0].startswith('mixerd'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return list(json.loads(done.stdout.splitlines()[-1]))


def test_pytest_version_loads_nothing_of_mixerd(tmp_path: Path) -> None:
    assert _mixerd_modules(tmp_path, "--version") == []


def test_a_project_without_the_opt_in_loads_only_the_plugin_module(tmp_path: Path) -> None:
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    assert _mixerd_modules(tmp_path, "-q", "-p", "no:cacheprovider") == ["mixerd", "mixerd.pytest_plugin"]


def test_the_plugin_module_imports_nothing_once_pytest_is_loaded() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import pytest, mixerd.pytest_plugin"],
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = done.stderr.splitlines()
    after_pytest = lines[next(i for i, line in enumerate(lines) if line.endswith("| pytest")) + 1 :]
    imported = [line.rpartition("|")[2].strip() for line in after_pytest if line.startswith("import time:")]
    assert imported == ["mixerd", "mixerd.pytest_plugin"]


def test_a_project_that_opts_in_loads_the_fixtures(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\nmixerd_adapters = json\n")
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    assert "mixerd.testing.fixtures" in _mixerd_modules(tmp_path, "-q", "-p", "no:cacheprovider")


def test_without_the_opt_in_there_is_no_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_server(mixerd_server):\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'mixerd_server' not found*"])


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project with an adapter of its own (not installed) that opts in."""
    pytester.makeini("[pytest]\npythonpath = .\nmixerd_adapters = denyone_adapter\n")
    pytester.makepyfile(denyone_adapter=ADAPTER)
    (pytester.path / "config").mkdir()
    (pytester.path / "config" / "deny.yaml").write_text(CONFIG)
    return pytester


def test_the_server_fixture_serves_a_folder_with_the_projects_adapter(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_server="""
        import grpc

        from mixerd.api.mixer.v1 import mixer_pb2, mixer_pb2_grpc
        from mixerd.attribute import encode_attributes


        def check(server, user):
            with grpc.insecure_channel(server.address) as channel:
                bag = {"request.headers": {"x-user": user}}
                request = mixer_pb2.CheckRequest(attributes=encode_attributes(bag))
                return mixer_pb2_grpc.MixerStub(channel).Check(request, timeout=10).precondition.status


        def test_served(mixerd_server, mixerd_adapters):
            assert "denyone" in mixerd_adapters and "denier" in mixerd_adapters
            server = mixerd_server("config")
            assert check(server, "bob").message == "deny.handler.istio-system:bob is denied"
            assert check(server, "alice").code == 0
            assert server.metric("mixerd_config_loads_total") >= 1
        """
    )
    result = project.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["mixerd *: adapter modules under test: denyone_adapter"])


def test_the_scenario_fixture_passes_and_fails_with_a_diff(project: pytest.Pytester) -> None:
    config = textwrap.indent(CONFIG.strip(), "  ")
    (project.path / "right.yaml").write_text(SCENARIO.format(config=config, alice="OK"))
    (project.path / "wrong.yaml").write_text(SCENARIO.format(config=config, alice="PERMISSION_DENIED"))
    project.makepyfile(
        test_scenarios="""
        import pytest

        @pytest.mark.parametrize("name", ["right", "wrong"])
        def test_scenario(mixerd_scenario, name):
            mixerd_scenario(f"{name}.yaml")
        """
    )
    result = project.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*ScenarioFailed: scenario wrong.yaml: 1 call(s) differ*"])


def test_the_conformance_checks_find_an_adapter_by_name(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_conformance="""
        from mixerd.testing.conformance import conformance_tests

        test_denyone = conformance_tests("denyone", params={"deny": "bob"})
        test_missing = conformance_tests("nosuch")
        """
    )
    result = project.runpytest("-v")
    result.assert_outcomes(passed=len(CHECKS), failed=len(CHECKS))  # denyone passes each; nosuch fails each
    result.stdout.re_match_lines(
        [
            r".*test_denyone\[adapter_info\] PASSED",
            r".*test_denyone\[failed_build_leaves_nothing\] PASSED",
            r".*test_denyone\[closed_handler_leaves_no_cycle\] PASSED",
            r"no adapter 'nosuch' \(there are denier, denyone, .*\): install its package",
        ]
    )
