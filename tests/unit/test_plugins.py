"""mixerd.plugins: built-ins and entry points registered through one door; plugin mistakes caught at
start-up with messages that name the plugin."""

from __future__ import annotations

import json
import platform
import re
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

import pluggy
import pytest

import mixerd
from mixerd import cli
from mixerd.adapter import AdapterInfo
from mixerd.hookspecs import hookimpl
from mixerd.plugins import (
    BUILTIN_ADAPTERS,
    ENTRY_POINT_GROUP,
    Origin,
    PluginError,
    adapter_origins,
    collect_adapters,
    load_adapters,
    make_plugin_manager,
)
from mixerd.templates import TEMPLATES

#: The adapters mixerd ships (zipkin comes with otlp's module).
BUILTIN_NAMES = set(collect_adapters(make_plugin_manager(entry_points=False)))


@dataclass
class Params:
    level: int = 0


def _build(env: Any) -> object:
    return object()


def info(name: str = "fake", templates: Any = ("checknothing",), **fields: Any) -> AdapterInfo:
    return AdapterInfo(
        name=name, templates=templates, params=fields.pop("params", Params), build=_build, **fields
    )


def plugin(name: str, answer: Any) -> ModuleType:
    """A module-like plugin whose hook returns `answer` (or raises it, when it is an exception)."""
    module = ModuleType(name)

    @hookimpl
    def mixerd_adapter_info() -> Any:
        if isinstance(answer, Exception):
            raise answer
        return answer

    module.mixerd_adapter_info = mixerd_adapter_info  # type: ignore[attr-defined]
    return module


def collect(*plugins: ModuleType) -> dict[str, AdapterInfo]:
    pm = make_plugin_manager(builtins=(), entry_points=False)
    for p in plugins:
        pm.register(p, name=p.__name__)
    return dict(collect_adapters(pm))


def collect_error(*plugins: ModuleType) -> str:
    with pytest.raises(PluginError) as e:
        collect(*plugins)
    return str(e.value)


# -- built-ins ------------------------------------------------------------------------------------


def test_builtins_come_from_the_explicit_module_list() -> None:
    pm = make_plugin_manager(entry_points=False)
    assert sorted(name for name, _ in pm.list_name_plugin()) == sorted(BUILTIN_ADAPTERS)
    adapters = collect_adapters(pm)
    assert list(adapters) == [
        "denier",
        "fluentd",
        "kubernetesenv",
        "listchecker",
        "memquota",
        "noop",
        "otlp",
        "prometheus",
        "redisquota",
        "statsd",
        "stdio",
        "zipkin",
    ]
    assert isinstance(adapters, MappingProxyType)


def test_load_adapters_includes_the_builtins() -> None:
    assert {"denier", "listchecker", "memquota", "noop", "stdio"} <= set(load_adapters())


def test_nothing_is_registered_by_importing() -> None:
    assert make_plugin_manager(builtins=(), entry_points=False).get_plugins() == set()


# -- what a hook may answer -------------------------------------------------------------------------


def test_one_info_or_a_list_of_them() -> None:
    adapters = collect(
        plugin("one", info("a")), plugin("two", [info("c"), info("b", ("metric", "logentry"))])
    )
    assert list(adapters) == ["a", "b", "c"]
    assert adapters["b"].templates == ("metric", "logentry")


def test_duplicate_adapter_names() -> None:
    assert collect_error(plugin("first", info("dup")), plugin("second", info("dup"))) == (
        "adapter plugin 'second': adapter name 'dup' is already provided by 'first'"
    )


def test_an_answer_that_is_not_an_adapter_info() -> None:
    assert collect_error(plugin("odd", {"name": "x"})) == (
        "adapter plugin 'odd': mixerd_adapter_info returned {'name': 'x'}, not an AdapterInfo"
    )
    assert collect_error(plugin("none", None)) == (
        "adapter plugin 'none': mixerd_adapter_info returned None, not an AdapterInfo"
    )


def test_a_hook_that_raises() -> None:
    assert collect_error(plugin("boom", RuntimeError("no config"))) == (
        "adapter plugin 'boom': mixerd_adapter_info failed: no config"
    )


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (
            info(templates=("metric", "metrics", "quotas")),
            "names unknown templates ['metrics', 'quotas'] (known: apikey, authorization, checknothing, "
            "kubernetes, listentry, logentry, metric, quota, reportnothing, tracespan)",
        ),
        (info(templates=()), "supports no templates"),
        (info(templates="metric"), "templates must be a tuple of template names, got 'metric'"),
        (info(templates=("metric", "quota", "metric")), "names templates more than once: ['metric']"),
        (info(params=dict), "params must be a dataclass (see mixerd.params), got <class 'dict'>"),
        (info(params=Params()), "params must be a dataclass (see mixerd.params), got Params(level=0)"),
        (info(validate="yes"), "validate must be callable or None, got 'yes'"),
        (info(description=None), "description must be a string, got None"),
    ],
)
def test_bad_adapter_infos(bad: AdapterInfo, problem: str) -> None:
    assert collect_error(plugin("bad", bad)) == f"adapter plugin 'bad': adapter 'fake' {problem}"


@pytest.mark.parametrize("name", ["", "Fake", "my adapter", "a.b", "9lives", None])
def test_bad_adapter_names(name: Any) -> None:
    assert collect_error(plugin("bad", info(name))) == (
        f"adapter plugin 'bad': adapter {name!r} has a bad name: "
        "use lower-case letters, digits, '_' and '-', starting with a letter"
    )


def test_a_build_that_is_not_callable() -> None:
    bad = AdapterInfo(name="fake", templates=("metric",), params=Params, build="make")  # type: ignore[arg-type]
    assert (
        collect_error(plugin("bad", bad))
        == "adapter plugin 'bad': adapter 'fake' build must be callable, got 'make'"
    )


# -- registration mistakes ------------------------------------------------------------------------


def test_a_misspelt_hook_fails_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    module = ModuleType("typo_plugin")

    @hookimpl
    def mixerd_adapters_info() -> AdapterInfo:
        return info()

    module.mixerd_adapters_info = mixerd_adapters_info  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "typo_plugin", module)
    with pytest.raises(PluginError) as e:
        make_plugin_manager(builtins=["typo_plugin"], entry_points=False)
    assert str(e.value).startswith(
        "adapter plugin 'typo_plugin': unknown hook 'mixerd_adapters_info' in plugin"
    )
    assert isinstance(e.value.__cause__, pluggy.PluginValidationError)


def test_a_hook_with_arguments_the_spec_does_not_offer(monkeypatch: pytest.MonkeyPatch) -> None:
    module = ModuleType("args_plugin")

    @hookimpl
    def mixerd_adapter_info(config: Any) -> AdapterInfo:
        return info()

    module.mixerd_adapter_info = mixerd_adapter_info  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "args_plugin", module)
    with pytest.raises(PluginError) as e:
        make_plugin_manager(builtins=["args_plugin"], entry_points=False)
    message = str(e.value)
    assert message.startswith("adapter plugin 'args_plugin' (built-in): Plugin 'args_plugin' for hook")
    assert "hookimpl definition: mixerd_adapter_info(config: 'Any')" in message
    assert (
        "Argument(s) {'config'} are declared in the hookimpl but can not be found in the hookspec" in message
    )


# -- entry points, through fake installed distributions -------------------------------------------

_PLUGIN_SOURCE = """
from collections.abc import Iterator
from dataclasses import dataclass

from mixerd.adapter import AdapterInfo
from mixerd.hookspecs import hookimpl


@dataclass
class Params:
    pass


@hookimpl
def mixerd_adapter_info():
    return AdapterInfo(name={adapter!r}, templates=("checknothing",), params=Params, build=lambda env: None)
"""


def install(
    site: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str] | None = None
) -> None:
    """A distribution as pip leaves it: its dist-info (METADATA, entry_points.txt) and its modules."""
    info_dir = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info_dir.mkdir(parents=True)
    (info_dir / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info_dir / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")
    for module, adapter in (modules or {}).items():
        (site / f"{module}.py").write_text(textwrap.dedent(_PLUGIN_SOURCE.format(adapter=adapter)))


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path for fake installed distributions (their modules are forgotten afterwards)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("ep_"):
            del sys.modules[name]


def test_an_installed_entry_point_is_an_adapter(site: Path) -> None:
    install(site, "mixerd-fake", {"fake": "ep_fake"}, {"ep_fake": "fake"})
    pm = make_plugin_manager()
    assert pm.has_plugin("fake")
    assert pm.get_plugin("fake") is sys.modules["ep_fake"]
    adapters = collect_adapters(pm)
    assert adapters["fake"].templates == ("checknothing",)
    assert {"denier", "stdio"} <= set(adapters)


def test_a_distribution_found_twice_is_loaded_once(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(site, "mixerd-fake", {"fake": "ep_twice"}, {"ep_twice": "fake"})
    again = site / "again"
    install(again, "mixerd-fake", {"fake": "ep_twice"})
    monkeypatch.syspath_prepend(str(again))
    assert "fake" in collect_adapters(make_plugin_manager())


def test_an_entry_point_that_cannot_be_imported(site: Path) -> None:
    install(site, "mixerd-broken", {"broken": "ep_missing_module"})
    with pytest.raises(PluginError) as e:
        make_plugin_manager()
    assert str(e.value) == (
        "adapter plugin 'broken': cannot load entry point 'broken' = 'ep_missing_module' of "
        "mixerd-broken 1.0: ModuleNotFoundError: No module named 'ep_missing_module'"
    )


def test_two_distributions_with_one_entry_point_name(site: Path) -> None:
    install(site, "mixerd-one", {"same": "ep_one"}, {"ep_one": "one"})
    install(site, "mixerd-two", {"same": "ep_two"}, {"ep_two": "two"})
    with pytest.raises(PluginError) as e:
        make_plugin_manager()
    assert re.fullmatch(
        r"adapter plugin 'same': entry point 'same' = 'ep_(one|two)' of mixerd-(one|two) 1\.0: "
        r"the name is taken by an entry point of mixerd-(one|two) 1\.0",
        str(e.value),
    )


def test_an_entry_point_named_like_a_builtin(site: Path) -> None:
    install(site, "mixerd-shadow", {"mixerd_adapters.denier": "ep_shadow"}, {"ep_shadow": "shadow"})
    with pytest.raises(PluginError) as e:
        make_plugin_manager()
    assert str(e.value) == (
        "adapter plugin 'mixerd_adapters.denier': entry point 'mixerd_adapters.denier' = 'ep_shadow' of "
        "mixerd-shadow 1.0: the name is taken by a built-in adapter"
    )


def test_two_entry_points_for_one_adapter_name(site: Path) -> None:
    install(site, "mixerd-a", {"a": "ep_a"}, {"ep_a": "denier"})
    with pytest.raises(PluginError) as e:
        load_adapters()
    assert (
        str(e.value)
        == "adapter plugin 'a': adapter name 'denier' is already provided by 'mixerd_adapters.denier'"
    )


def test_entry_points_can_be_left_out(site: Path) -> None:
    install(site, "mixerd-broken", {"broken": "ep_missing_module"})
    assert "broken" not in collect_adapters(make_plugin_manager(entry_points=False))


# -- mixerd version: where each adapter comes from -------------------------------------------------------


def test_origins_name_the_distribution_of_each_adapter(site: Path) -> None:
    install(site, "mixerd-fake", {"fake": "ep_origin"}, {"ep_origin": "fake"})
    origins = adapter_origins(make_plugin_manager())
    assert origins["fake"] == Origin("mixerd-fake", "1.0", builtin=False)
    assert origins["denier"] == Origin("mixerd", mixerd.__version__, builtin=True)
    assert set(origins) == set(load_adapters())


def test_version_lists_adapters_with_their_packages_and_every_template(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install(site, "mixerd-fake", {"fake": "ep_version"}, {"ep_version": "fake"})
    assert cli.main(["version"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"mixerd {mixerd.__version__} (Python {platform.python_version()})"
    rows = {line.split()[0]: line.split(maxsplit=1)[1] for line in lines if line.startswith("  ")}
    assert re.fullmatch(r"plugin \(mixerd-fake 1\.0\)\s+checknothing", rows["fake"])
    assert re.fullmatch(rf"built-in \(mixerd {re.escape(mixerd.__version__)}\)\s+logentry", rows["fluentd"])
    for name in BUILTIN_NAMES:
        assert rows[name].startswith("built-in (mixerd "), name
    for name, template in TEMPLATES.items():
        assert rows[name] == template.variety.name


def test_version_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["version", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["mixerd"] == mixerd.__version__ and answer["errors"] == []
    memquota = next(a for a in answer["adapters"] if a["name"] == "memquota")
    assert (memquota["builtin"], memquota["package"], memquota["templates"]) == (True, "mixerd", ["quota"])
    assert [t["name"] for t in answer["templates"]] == sorted(TEMPLATES)


def test_version_with_a_broken_plugin_still_lists_the_built_ins(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install(site, "mixerd-broken", {"broken": "ep_missing_module"})
    assert cli.main(["version"]) == 1
    out, err = capsys.readouterr()
    assert "  denier " in out and "broken" not in out
    assert err.startswith("mixerd version: adapter plugin 'broken': cannot load entry point")
