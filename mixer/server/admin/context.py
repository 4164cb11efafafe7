"""What the admin views read: the runtime (table in force, last rejection, counters), the open access-log
streams, the settings, and where each adapter comes from.

Views run on the admin server's threads while requests run on the gRPC event loop, so they only read:
the routing table and its snapshot are immutable once built and swapped whole, and a handler's stats
methods are asked through `handler_call`, which turns any failure into a message instead of a page. An
explanation (explain.py) is the one thing that dispatches: it runs on `loop`, the server's event loop.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...plugins import Origin, PluginError, adapter_origins, make_plugin_manager
from ...runtime import Runtime
from ...settings import Settings
from ..decisions import DecisionWriter
from ..envoy.accesslog_streams import StreamRegistry


@dataclass
class AdminContext:
    runtime: Runtime | None
    settings: Settings = field(default_factory=Settings)
    streams: StreamRegistry | None = None
    started_at: int = 0  # clock ns when the server started
    grpc_address: str = ""  # host:port of the gRPC server, once bound
    loop: asyncio.AbstractEventLoop | None = None  # the server's event loop, where explanations run
    decisions: DecisionWriter | None = None  # the decision log's writer, while the log is on

    @property
    def clock(self) -> Callable[[], int]:
        return self.runtime.clock if self.runtime is not None else time.time_ns

    @functools.cached_property
    def origins(self) -> Mapping[str, Origin]:
        """Adapter name -> the package that ships it (as `mixerd version` says)."""
        return _origins()


@functools.cache
def _origins() -> Mapping[str, Origin]:
    # The plugins loaded already when the server started, so this only walks the entry points again.
    try:
        return adapter_origins(make_plugin_manager())
    except PluginError:
        return adapter_origins(make_plugin_manager(entry_points=False))


def handler_call(handler: Any, method: str) -> tuple[Any, str]:
    """(`handler.method()`, "") when the handler has the method, (None, "") when not, (None, why) when
    it raised: one handler must not take a page down."""
    fn = getattr(handler, method, None)
    if not callable(fn):
        return None, ""
    for _ in range(3):  # a dict resized by the event loop meanwhile: try again
        try:
            return fn(), ""
        except RuntimeError as e:
            error = e
        except Exception as e:
            return None, f"{type(e).__name__}: {e}"
    return None, f"{type(error).__name__}: {error}"


def copied(mapping: Mapping[Any, int]) -> dict[Any, int]:
    """A copy of counts the event loop keeps adding keys to (a copy taken meanwhile raises: try again)."""
    for _ in range(3):
        try:
            return dict(mapping)
        except RuntimeError:
            continue
    return {}
