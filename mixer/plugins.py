"""The plugin manager: built-in adapters and installed `mixerd.adapters` entry points, one registry.

pluggy only discovers (DESIGN.md decision 1): each plugin answers `mixerd_adapter_info` once, at
start-up, and requests call the built handlers directly. Built-in adapters are registered from an
explicit module list, through the same door as third-party ones (decision 2).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Mapping
from types import MappingProxyType

import pluggy

from . import hookspecs
from .adapter import AdapterInfo
from .templates import TEMPLATES

ENTRY_POINT_GROUP = "mixerd.adapters"

#: The built-in adapters, as the modules that implement the hook.
BUILTIN_ADAPTERS: tuple[str, ...] = (
    "mixerd_adapters.denier",
    "mixerd_adapters.listchecker",
    "mixerd_adapters.memquota",
    "mixerd_adapters.noop",
    "mixerd_adapters.stdio",
)

_log = logging.getLogger(__name__)


class PluginError(Exception):
    """A plugin that cannot be used; the message names the plugin."""


def make_plugin_manager(
    *, builtins: Iterable[str] = BUILTIN_ADAPTERS, entry_points: bool = True
) -> pluggy.PluginManager:
    """A plugin manager holding the built-in adapters and (unless told not to) installed ones."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for module_name in builtins:
        pm.register(importlib.import_module(module_name), name=module_name)
    if entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    pm.check_pending()  # a hookimpl with a misspelt name fails here, naming the plugin
    return pm


def collect_adapters(pm: pluggy.PluginManager) -> Mapping[str, AdapterInfo]:
    """Adapter name -> AdapterInfo from every registered plugin, each checked."""
    adapters: dict[str, AdapterInfo] = {}
    owners: dict[str, str] = {}
    for impl in pm.hook.mixerd_adapter_info.get_hookimpls():
        plugin = impl.plugin_name
        try:
            answer = impl.function()
        except Exception as e:
            raise PluginError(f"adapter plugin {plugin!r}: mixerd_adapter_info failed: {e}") from e
        infos = answer if isinstance(answer, list | tuple) else [answer]
        for info in infos:
            _check_info(plugin, info)
            if info.name in adapters:
                raise PluginError(
                    f"adapter plugin {plugin!r}: adapter name {info.name!r} "
                    f"is already provided by {owners[info.name]!r}"
                )
            adapters[info.name] = info
            owners[info.name] = plugin
    return MappingProxyType(dict(sorted(adapters.items())))


def _check_info(plugin: str, info: object) -> None:
    if not isinstance(info, AdapterInfo):
        raise PluginError(
            f"adapter plugin {plugin!r}: mixerd_adapter_info returned {info!r}, not an AdapterInfo"
        )
    unknown = [t for t in info.templates if t not in TEMPLATES]
    if unknown:
        raise PluginError(
            f"adapter plugin {plugin!r}: adapter {info.name!r} names unknown templates {unknown}"
        )
    if not info.templates:
        raise PluginError(f"adapter plugin {plugin!r}: adapter {info.name!r} supports no templates")


def load_adapters() -> Mapping[str, AdapterInfo]:
    """Every adapter available to this process: the built-ins and the installed plugins."""
    return collect_adapters(make_plugin_manager())
