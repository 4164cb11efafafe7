"""mixerd's pytest plugin, for adapter authors: off until a project asks for it.

pytest loads this module in every project of an environment where mixerd is installed (the `pytest11`
entry point), so it costs nothing there: it imports nothing at all (pytest is already loaded) and only
declares an ini option. A project opts in by naming the modules that implement its adapters, as its
entry points do::

    [tool.pytest.ini_options]
    mixerd_adapters = ["mixerd_example_adapter"]

Then, and only then, the fixtures of `mixerd.testing.fixtures` are registered (`mixerd_adapters`,
`mixerd_server`, `mixerd_scenario`; loading them is what imports mixerd's server). The lifecycle
conformance checks come from `mixerd.testing.conformance.conformance_tests`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

INI = "mixerd_adapters"
FIXTURES = "mixerd.testing.fixtures"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        INI,
        "mixerd: the modules that implement your adapters (as your mixerd.adapters entry points name "
        "them); setting it turns on mixerd's fixtures (mixerd_server, mixerd_scenario, mixerd_adapters)",
        type="linelist",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getini(INI) and not config.pluginmanager.has_plugin(FIXTURES):
        config.pluginmanager.import_plugin(FIXTURES)
