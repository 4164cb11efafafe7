"""The plugin manager: built-in adapters and installed `mixerd.adapters` entry points, one registry.

pluggy only discovers (DESIGN.md decision 1): each plugin answers `mixerd_adapter_info` once, at
start-up, and requests call the built handlers directly. Built-in adapters are registered from an
explicit module list, through the same door as third-party ones (decision 2).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import logging
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import NamedTuple

import pluggy

from . import __version__, hookspecs
from .adapter import AdapterInfo
from .templates import TEMPLATES

ENTRY_POINT_GROUP = "mixerd.adapters"

#: The built-in adapters, as the modules that implement the hook.
BUILTIN_ADAPTERS: tuple[str, ...] = (
    "mixerd_adapters.denier",
    "mixerd_adapters.fluentd",
    "mixerd_adapters.kubernetesenv",
    "mixerd_adapters.listchecker",
    "mixerd_adapters.memquota",
    "mixerd_adapters.noop",
    "mixerd_adapters.otlp",
    "mixerd_adapters.prometheus",
    "mixerd_adapters.redisquota",
    "mixerd_adapters.statsd",
    "mixerd_adapters.stdio",
)

_log = logging.getLogger(__name__)


class PluginError(Exception):
    """A plugin that cannot be used; the message names the plugin."""


class Origin(NamedTuple):
    """Where a plugin comes from: the distribution (package) that ships it, and its version."""

    distribution: str
    version: str
    builtin: bool


_UNKNOWN = Origin("an unknown distribution", "", builtin=False)


class _Manager(pluggy.PluginManager):
    """pluggy's manager, remembering each plugin's origin (`mixerd version` prints them)."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.origins: dict[str, Origin] = {}


def make_plugin_manager(
    *, builtins: Iterable[str] = BUILTIN_ADAPTERS, entry_points: bool = True
) -> pluggy.PluginManager:
    """A plugin manager holding the built-in adapters and (unless told not to) installed ones.

    A plugin that cannot be imported or registered raises PluginError naming it (and, for an entry
    point, the distribution that declares it).
    """
    pm = _Manager()
    pm.add_hookspecs(hookspecs)
    builtin = Origin("mixerd", __version__, builtin=True)
    for module_name in builtins:
        _register(pm, importlib.import_module(module_name), module_name, "built-in", builtin)
    if entry_points:
        _load_entry_points(pm)
    try:
        pm.check_pending()  # a hookimpl with a misspelt name fails here, naming the plugin
    except pluggy.PluginValidationError as e:
        raise PluginError(f"adapter plugin {pm.get_name(e.plugin)!r}: {e}") from e
    return pm


def _load_entry_points(pm: _Manager) -> None:
    """Register every `mixerd.adapters` entry point (each distribution once, even if found twice)."""
    owners: dict[str, str] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else "an unknown distribution"
        where = f"entry point {ep.name!r} = {ep.value!r} of {dist}"
        if ep.name in owners or pm.has_plugin(ep.name):
            other = f"an entry point of {owners[ep.name]}" if ep.name in owners else "a built-in adapter"
            raise PluginError(f"adapter plugin {ep.name!r}: {where}: the name is taken by {other}")
        try:
            plugin = ep.load()
        except Exception as e:
            error = f"{type(e).__name__}: {e}"
            raise PluginError(f"adapter plugin {ep.name!r}: cannot load {where}: {error}") from e
        origin = Origin(ep.dist.name, ep.dist.version, False) if ep.dist is not None else _UNKNOWN
        _register(pm, plugin, ep.name, where, origin)
        owners[ep.name] = dist


def _register(pm: _Manager, plugin: object, name: str, where: str, origin: Origin) -> None:
    try:
        pm.register(plugin, name=name)
        pm.origins[name] = origin
    except pluggy.PluginValidationError as e:  # a hookimpl whose arguments the hook does not offer
        raise PluginError(f"adapter plugin {name!r} ({where}): {e}") from e
    except ValueError as e:  # the same module registered twice
        raise PluginError(f"adapter plugin {name!r} ({where}): {e}".splitlines()[0]) from e


def collect_adapters(pm: pluggy.PluginManager) -> Mapping[str, AdapterInfo]:
    """Adapter name -> AdapterInfo from every registered plugin, each checked."""
    return MappingProxyType({name: info for name, (info, _) in _collect(pm).items()})


def adapter_origins(pm: pluggy.PluginManager) -> Mapping[str, Origin]:
    """Adapter name -> the origin of the plugin that provides it (for `mixerd version`)."""
    origins: Mapping[str, Origin] = getattr(pm, "origins", {})
    return MappingProxyType(
        {name: origins.get(plugin, _UNKNOWN) for name, (_, plugin) in _collect(pm).items()}
    )


def _collect(pm: pluggy.PluginManager) -> dict[str, tuple[AdapterInfo, str]]:
    """Adapter name -> (its AdapterInfo, the name of the plugin providing it), sorted by name."""
    adapters: dict[str, tuple[AdapterInfo, str]] = {}
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
                    f"is already provided by {adapters[info.name][1]!r}"
                )
            adapters[info.name] = (info, plugin)
    return dict(sorted(adapters.items()))


_NAME = re.compile(r"[a-z][a-z0-9_-]*")


def _check_info(plugin: str, info: object) -> None:
    if not isinstance(info, AdapterInfo):
        raise PluginError(
            f"adapter plugin {plugin!r}: mixerd_adapter_info returned {info!r}, not an AdapterInfo"
        )
    problem = _info_problem(info)
    if problem:
        raise PluginError(f"adapter plugin {plugin!r}: adapter {info.name!r} {problem}")


def _info_problem(info: AdapterInfo) -> str:
    """What is wrong with `info`, or ""."""
    if not isinstance(info.name, str) or not _NAME.fullmatch(info.name):
        return "has a bad name: use lower-case letters, digits, '_' and '-', starting with a letter"
    if isinstance(info.templates, str) or not isinstance(info.templates, tuple | list):
        return f"templates must be a tuple of template names, got {info.templates!r}"
    if not info.templates:
        return "supports no templates"
    unknown = [t for t in info.templates if t not in TEMPLATES]
    if unknown:
        return f"names unknown templates {unknown} (known: {', '.join(sorted(TEMPLATES))})"
    twice = sorted({t for t in info.templates if info.templates.count(t) > 1})
    if twice:
        return f"names templates more than once: {twice}"
    if not (isinstance(info.params, type) and dataclasses.is_dataclass(info.params)):
        return f"params must be a dataclass (see mixerd.params), got {info.params!r}"
    if not callable(info.build):
        return f"build must be callable, got {info.build!r}"
    if info.validate is not None and not callable(info.validate):
        return f"validate must be callable or None, got {info.validate!r}"
    if not isinstance(info.description, str):
        return f"description must be a string, got {info.description!r}"
    if not isinstance(info.rate_limits, bool):
        return f"rate_limits must be True or False, got {info.rate_limits!r}"
    return ""


def load_adapters() -> Mapping[str, AdapterInfo]:
    """Every adapter available to this process: the built-ins and the installed plugins."""
    return collect_adapters(make_plugin_manager())
