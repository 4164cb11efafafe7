"""The config in force: load, validate, build handlers, swap the routing table, close what was replaced.

`Runtime.table` is the one reference requests read. A change builds a new table beside the old one,
reusing every handler whose adapter, params and instances did not change, and swaps the reference;
handlers that were replaced are closed once the old table's last request has finished (waiting at most
`drain_timeout`, as Mixer did). A rejected change leaves everything as it was.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from pathlib import Path

from ..adapter import AdapterInfo, Clock
from ..config import ConfigRejected, Snapshot, fingerprint, load_snapshot
from ..config.snapshot import DEFAULT_NAMESPACE, EMPTY_SNAPSHOT
from .handlers import BuiltHandler, build_handler
from .stats import RuntimeStats
from .table import RoutingTable

_log = logging.getLogger(__name__)


class Runtime:
    """Owns the routing table in force and the handlers it calls."""

    def __init__(
        self,
        adapters: Mapping[str, AdapterInfo],
        *,
        folder: str | Path | None = None,
        default_namespace: str = DEFAULT_NAMESPACE,
        clock: Clock = time.time_ns,
        stats: RuntimeStats | None = None,
        drain_timeout: float = 10.0,
    ) -> None:
        self.adapters = adapters
        self.folder = Path(folder) if folder is not None else None
        self.default_namespace = default_namespace
        self.clock = clock
        self.stats = stats or RuntimeStats()
        self.drain_timeout = drain_timeout
        self.table = RoutingTable(EMPTY_SNAPSHOT, {})
        self.last_rejection: ConfigRejected | None = None
        self._generation = 0
        self._closing: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    # -- loading --------------------------------------------------------------------------------

    def compile(self) -> Snapshot:
        """The folder's config compiled (ConfigRejected when invalid); nothing changes."""
        if self.folder is None:
            return EMPTY_SNAPSHOT
        return load_snapshot(self.folder, self.adapters, default_namespace=self.default_namespace)

    async def reload(self) -> bool:
        """Load the folder again and put it in force; False (logged, counted) when it is rejected."""
        try:
            snapshot = self.compile()
        except ConfigRejected as e:
            self.stats.config_rejections += 1
            self.stats.config_errors = len(e.errors)
            self.last_rejection = e
            _log.error("%s; the previous config keeps serving", e)
            return False
        await self.apply(snapshot)
        return True

    async def apply(self, snapshot: Snapshot) -> None:
        """Build `snapshot`'s handlers (reusing unchanged ones), swap the table, retire the old one."""
        async with self._lock:
            old = self.table
            by_key = {h.config.key: h for h in old.handlers.values() if not h.closed}
            handlers: dict[str, BuiltHandler] = {}
            reused = 0
            for fqn, config in snapshot.handlers.items():
                kept = by_key.get(config.key)
                if kept is not None and kept.available:
                    handlers[fqn] = kept
                    reused += 1
                    continue
                built = await build_handler(config, self.clock)
                self.stats.handler_builds += 1
                if not built.available:
                    self.stats.handler_build_failures += 1
                handlers[fqn] = built
            self._generation += 1
            self.table = RoutingTable(snapshot, handlers, self._generation)
            self.stats.config_loads += 1
            self.stats.handler_reuses += reused
            self.stats.resources = dict(snapshot.resources_by_kind)
            self.last_rejection = None
            kept_ids = {id(h) for h in handlers.values()}
            retired = [h for h in old.handlers.values() if id(h) not in kept_ids]
            if retired:
                task = asyncio.get_running_loop().create_task(self._retire(old, retired))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
            _log.info(
                "config %d in force: %d rules, %d handlers (%d reused), %d instances",
                self._generation,
                len(snapshot.rules),
                len(handlers),
                reused,
                len(snapshot.instances),
            )

    async def _retire(self, table: RoutingTable, handlers: list[BuiltHandler]) -> None:
        waited = 0.0
        while table.inflight > 0 and waited < self.drain_timeout:
            await asyncio.sleep(0.01)
            waited += 0.01
        if table.inflight > 0:
            _log.warning(
                "config %d still has %d requests in flight after %.0fs; closing its handlers anyway",
                table.generation,
                table.inflight,
                self.drain_timeout,
            )
        for handler in handlers:
            await self._close(handler)

    async def _close(self, handler: BuiltHandler) -> None:
        if handler.closed:
            return
        try:
            await handler.close()
        except Exception:
            self.stats.handler_close_failures += 1
        self.stats.handler_closes += 1

    # -- watching -------------------------------------------------------------------------------

    async def watch(self, poll_interval: float = 0.5, settle: float = 0.2) -> None:
        """Poll the folder and reload when its files change (runs until cancelled).

        A change is acted on once the folder has stayed the same for `settle` seconds, so an editor's
        or kubelet's multi-step write is read whole.
        """
        if self.folder is None:
            return
        seen = fingerprint(self.folder)
        while True:
            await asyncio.sleep(poll_interval)
            now = fingerprint(self.folder)
            if now == seen:
                continue
            while True:  # debounce: wait until the folder is quiet
                await asyncio.sleep(settle)
                later = fingerprint(self.folder)
                if later == now:
                    break
                now = later
            seen = now
            _log.info("config folder %s changed; reloading", self.folder)
            await self.reload()

    # -- shutdown -------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close every handler (after the current table drains) and wait for pending closes."""
        table = self.table
        await self._retire(table, list(table.handlers.values()))
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
