"""The fixtures of mixerd's pytest plugin, for testing an adapter against a real mixerd.

`mixerd.pytest_plugin` registers this module once a project opts in (the `mixerd_adapters` ini option);
`-p mixerd.testing.fixtures` loads it too. Its fixtures:

- `mixerd_adapters`: every adapter the tests may use: mixerd's built-ins, the installed plugins, and
  the modules the `mixerd_adapters` ini option names, registered as their entry point would be (so an
  adapter is testable from its source folder before it is installed);
- `mixerd_server`: `mixerd_server(config_folder, clock=..., **settings)` starts a real mixerd on the
  folder, in-process, on free loopback ports, with those adapters, and returns a
  `mixerd.testing_scenarios.RunningMixer` (`.address` for gRPC, `.metrics()`); every server a test
  started is stopped, and its handlers closed, when the test ends;
- `mixerd_scenario`: `mixerd_scenario(path)` runs a scenario file (`mixerd.testing_scenarios`: a
  config, the calls a proxy makes and the answers expected) against such a server, and fails with a
  diff for each call that answered otherwise.

The lifecycle conformance checks are `mixerd.testing.conformance.conformance_tests`.
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from .. import __version__
from ..adapter import AdapterInfo, Clock
from ..plugins import collect_adapters, make_plugin_manager
from ..runtime import Runtime
from ..testing_scenarios import RunningMixer, check_scenario, run_mixer

#: The ini option (declared by mixerd.pytest_plugin) naming the adapter modules under test.
INI = "mixerd_adapters"

_ADAPTERS = pytest.StashKey[Mapping[str, AdapterInfo]]()


def adapter_modules(config: pytest.Config) -> list[str]:
    """The modules the `mixerd_adapters` ini option names ([] when mixerd's plugin is not loaded)."""
    try:
        return list(config.getini(INI))
    except ValueError:  # the option is undeclared: mixerd.pytest_plugin is disabled (-p no:mixerd)
        return []


def adapters_for(config: pytest.Config) -> Mapping[str, AdapterInfo]:
    """Adapter name -> AdapterInfo: the built-ins, the installed plugins and the ini option's modules."""
    adapters = config.stash.get(_ADAPTERS, None)
    if adapters is None:
        pm = make_plugin_manager()
        for name in adapter_modules(config):
            module = importlib.import_module(name)
            if not pm.is_registered(module):  # unless its installed entry point brought it already
                pm.register(module, name=name)
        adapters = config.stash[_ADAPTERS] = collect_adapters(pm)
    return adapters


def pytest_report_header(config: pytest.Config) -> str:
    modules = ", ".join(adapter_modules(config)) or "none"
    return f"mixerd {__version__}: adapter modules under test: {modules}"


@pytest.fixture(scope="session")
def mixerd_adapters(pytestconfig: pytest.Config) -> Mapping[str, AdapterInfo]:
    """Every adapter a test's mixerd runs with (see the module docstring)."""
    return adapters_for(pytestconfig)


@pytest.fixture
def mixerd_server(mixerd_adapters: Mapping[str, AdapterInfo]) -> Iterator[Callable[..., RunningMixer]]:
    """`mixerd_server(config_folder, clock=None, **settings)`: a started mixerd serving the folder.

    `clock` (nanoseconds since the epoch) is what the adapters' `env.clock` reads; `settings` replace
    single server settings (`mixerd.settings.Settings` fields, e.g. `adapter_timeout=0.5`).
    """
    with contextlib.ExitStack() as running:

        def start(config_folder: str | Path, *, clock: Clock | None = None, **settings: Any) -> RunningMixer:
            runtime = Runtime(mixerd_adapters, folder=Path(config_folder), clock=clock or time.time_ns)
            return running.enter_context(run_mixer(runtime, **settings))

        yield start


@pytest.fixture
def mixerd_scenario(
    mixerd_adapters: Mapping[str, AdapterInfo], tmp_path: Path
) -> Callable[[str | Path], None]:
    """`mixerd_scenario(path)`: run the scenario file against a real mixerd (each in a folder of its own
    under the test's tmp_path, which `{tmp}` in the scenario stands for)."""
    count = 0

    def run(path: str | Path) -> None:
        nonlocal count
        count += 1
        check_scenario(path, tmp_path / f"scenario-{count}", adapters=mixerd_adapters)

    return run
