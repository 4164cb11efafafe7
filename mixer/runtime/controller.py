"""The config in force: load, validate, build handlers, swap the routing table, close what was replaced.

`Runtime.table` is the one reference requests read. A change builds a new table beside the old one,
reusing every handler (same FQN) whose adapter, params and instances did not change, and swaps the
reference; handlers that were replaced are closed once the last request of every table that used them
has finished (waiting at most `drain_timeout`, as Mixer did). A rejected change leaves everything as it
was. Changes are applied one at a time, in the order they were read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from pathlib import Path

from ..adapter import AdapterInfo, Clock
from ..config import ConfigError, ConfigRejected, ReadLimits, Snapshot, fingerprint, load_snapshot
from ..config.ratelimit_files import files_of
from ..config.secrets import file_state
from ..config.snapshot import DEFAULT_NAMESPACE, EMPTY_SNAPSHOT
from ..settings import Settings
from . import heap
from .handlers import BuiltHandler, build_handler
from .offload import run_detached, start_detached
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
        settings: Settings | None = None,
    ) -> None:
        self.adapters = adapters
        # The server's settings, handed to every handler built (Env.settings); start() sets them.
        self.settings = settings if settings is not None else Settings()
        self.folder = Path(folder) if folder is not None else None
        self.default_namespace = default_namespace
        self.clock = clock
        self.stats = stats or RuntimeStats()
        self.drain_timeout = drain_timeout
        self.table = RoutingTable(EMPTY_SNAPSHOT, {})
        self.last_rejection: ConfigRejected | None = None
        self.last_rejection_at = 0  # clock ns when it was rejected
        self.loaded_at = 0  # clock ns when the config in force was put in force
        self._generation = 0
        self._closing: set[asyncio.Task[None]] = set()
        # Replaced tables that may still have requests in flight (a table gets no new requests once
        # replaced, so one seen with none in flight is done for good).
        self._replaced: list[RoutingTable] = []
        self._lock = asyncio.Lock()
        self._read: tuple[object, ...] | None = None  # the folder's fingerprint when last read

    @property
    def generation(self) -> int:
        """How many configs have been put in force (0: none yet, the table is empty)."""
        return self._generation

    # -- loading --------------------------------------------------------------------------------

    def compile(self) -> Snapshot:
        """The folder's config compiled (ConfigRejected when invalid); nothing is put in force.

        The folder's fingerprint is taken first and kept as the state last read, so `watch` notices
        any change made after this read began (also one made before the watch started).
        """
        if self.folder is None:
            return EMPTY_SNAPSHOT
        self._read = self._fingerprint()
        if not self.folder.is_dir():  # gone (or not yet mounted): not the same as "no rules"
            raise ConfigRejected([ConfigError(str(self.folder), "the config folder does not exist")])
        limits = ReadLimits.of(self.settings)
        return load_snapshot(
            self.folder,
            self.adapters,
            default_namespace=self.default_namespace,
            limits=limits,
            ratelimit_files=files_of(self.settings, limits),  # envoyproxy/ratelimit's, one config with it
        )

    def _fingerprint(self) -> tuple[object, ...]:
        """What `watch` compares: the config folder's fingerprint, the ratelimit_config folder's, and the
        state of the secret files the config in force read (a rotated Secret reloads the config)."""
        assert self.folder is not None
        extra = self.settings.ratelimit_config
        secrets = tuple((s.path, file_state(s.path)) for s in self.table.snapshot.secret_files)
        return (fingerprint(self.folder), fingerprint(Path(extra)) if extra is not None else (), secrets)

    async def reload(self) -> bool:
        """Load the folder again and put it in force; False (logged, counted) when it is rejected."""
        async with self._lock:  # one change at a time, so an older read never overwrites a newer one
            with heap.loading():  # no full garbage collection while a second config is built (heap.py)
                try:
                    # Reading and compiling is blocking work; requests keep being served meanwhile. Its
                    # thread is never waited for at shutdown, whatever a read may be stuck on.
                    snapshot = await run_detached(self.compile)
                except ConfigRejected as e:
                    self.stats.config_rejections += 1
                    self.stats.config_errors = len(e.errors)
                    self.last_rejection = e
                    self.last_rejection_at = self.clock()
                    _log.error("%s; the previous config keeps serving", e)
                    return False
                await self._apply(snapshot)
                return True

    async def apply(self, snapshot: Snapshot) -> None:
        """Build `snapshot`'s handlers (reusing unchanged ones), swap the table, retire the old one."""
        async with self._lock:
            await self._apply(snapshot)

    async def _apply(self, snapshot: Snapshot) -> None:
        old = self.table
        # Reuse is by FQN and key: two handlers with equal params stay two handlers (each names itself
        # in verdicts and errors).
        by_key = {(fqn, h.config.key): h for fqn, h in old.handlers.items() if not h.closed}
        handlers: dict[str, BuiltHandler] = {}
        built_now: list[BuiltHandler] = []
        reused = 0
        try:
            for fqn, config in snapshot.handlers.items():
                kept = by_key.get((fqn, config.key))
                if kept is not None and kept.available:
                    handlers[fqn] = kept
                    reused += 1
                    continue
                built = await build_handler(config, self.clock, self.settings)
                built_now.append(built)
                self.stats.handler_builds += 1
                if not built.available:
                    self.stats.handler_build_failures += 1
                handlers[fqn] = built
            # Thousands of rules take a while to route: off the loop, so requests keep being answered.
            table = await run_detached(RoutingTable, snapshot, handlers, self._generation + 1)
        except BaseException:  # cancelled (shutdown) mid-change, or a bug: close what this change built
            for handler in built_now:
                await self._close(handler)
            raise
        self._swap(table, old, list(handlers.values()))
        heap.settle_after_load()  # the new config joins the objects collections never walk
        if self._read is not None:  # the secrets as this config read them: a later change reloads it
            self._read = (*self._read[:2], tuple((f.path, f.state) for f in snapshot.secret_files))
        self.stats.config_loads += 1
        self.stats.handler_reuses += reused
        self.stats.resources = dict(snapshot.resources_by_kind)
        self.stats.keep_only({rule.fqn for rule in snapshot.rules}, set(handlers))
        self.last_rejection = None
        self.loaded_at = self.clock()
        _log.info(
            "config %d in force: %d rules, %d handlers (%d reused), %d instances",
            self._generation,
            len(snapshot.rules),
            len(handlers),
            reused,
            len(snapshot.instances),
        )

    def _swap(self, table: RoutingTable, old: RoutingTable, kept: list[BuiltHandler]) -> int:
        """Put `table` in force in place of `old`; the handlers of `old` not in `kept` are closed once
        `old`'s requests are done. Returns how many handlers are retired."""
        self._generation += 1
        self.table = table
        self._prune()  # keep only those still in use
        self._replaced.append(old)
        kept_ids = {id(h) for h in kept}
        retired = [h for h in old.handlers.values() if id(h) not in kept_ids]
        if retired:
            task = asyncio.get_running_loop().create_task(self._retire(old.generation, retired))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return len(retired)

    # -- unavailable handlers ---------------------------------------------------------------------

    async def retry_unavailable(self) -> int:
        """Build again each handler of the config in force whose build failed (a backend that was down,
        a port that was taken); the ones that build now go into a new table, the rest wait for the next
        try. Returns how many are still unavailable."""
        async with self._lock:
            old = self.table
            failed = [h for h in old.handlers.values() if not h.available]
            if not failed:
                return 0
            rebuilt: dict[str, BuiltHandler] = {}
            for handler in failed:
                built = await build_handler(handler.config, self.clock, self.settings, retry=True)
                self.stats.handler_builds += 1
                if built.available:
                    rebuilt[handler.fqn] = built
                else:
                    self.stats.handler_build_failures += 1
                    await built.close()  # it holds nothing but its Env's background work
            if rebuilt:
                handlers = {**old.handlers, **rebuilt}
                try:
                    table = await run_detached(RoutingTable, old.snapshot, handlers, self._generation + 1)
                except BaseException:
                    for handler in rebuilt.values():
                        await self._close(handler)
                    raise
                self._swap(table, old, list(handlers.values()))
                _log.info("config %d in force: %s available again", self._generation, ", ".join(rebuilt))
            return len(failed) - len(rebuilt)

    async def keep_retrying(self, first: float = 1.0, longest: float = 60.0) -> None:
        """Retry unavailable handlers (runs until cancelled): after `first` seconds, then twice as long
        each time some are still unavailable, up to `longest`; a new config starts over at `first`."""
        delay, loads = first, self.stats.config_loads
        while True:
            await asyncio.sleep(delay)
            try:
                left = await self.retry_unavailable()
            except asyncio.CancelledError:
                raise
            except Exception:  # retrying must outlive any one failure, like the watch
                _log.exception("retrying unavailable handlers failed")
                left = 1
            if self.stats.config_loads != loads:  # a new config: its handlers start over
                loads, delay = self.stats.config_loads, first
            else:
                delay = min(delay * 2, longest) if left else first

    def _inflight(self, generation: int) -> int:
        """Requests still running on replaced tables up to `generation` (a handler dropped from table
        N may have been reused from an older one, whose requests can still be using it)."""
        self._prune()
        return sum(t.inflight for t in self._replaced if t.generation <= generation)

    def _prune(self) -> None:
        """Drop the replaced tables no request uses any more, freeing them in a thread, part by part."""
        done = [t for t in self._replaced if t.inflight == 0]
        if done:
            self._replaced = [t for t in self._replaced if t.inflight > 0]
            start_detached(_free, done, name="mixerd-free")

    async def _retire(self, generation: int, handlers: list[BuiltHandler]) -> None:
        waited = 0.0
        while self._inflight(generation) > 0 and waited < self.drain_timeout:
            await asyncio.sleep(0.01)
            waited += 0.01
        inflight = self._inflight(generation)
        if inflight > 0:
            _log.warning(
                "config %d still has %d requests in flight after %.0fs; closing its handlers anyway",
                generation,
                inflight,
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
        folder = self.folder
        if self._read is None:
            self._read = await run_detached(self._fingerprint)
        while True:
            await asyncio.sleep(poll_interval)
            try:
                now = await run_detached(self._fingerprint)
                if now == self._read:
                    continue
                while True:  # debounce: wait until the folder is quiet
                    await asyncio.sleep(settle)
                    later = await run_detached(self._fingerprint)
                    if later == now:
                        break
                    now = later
                _log.info("config folder %s changed; reloading", folder)
                await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception:  # the watch must outlive any one bad read: keep serving, keep watching
                _log.exception("reloading %s failed; the previous config keeps serving", folder)

    # -- shutdown -------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close every handler (after the current table drains) and wait for pending closes."""
        async with self._lock:  # not in the middle of a change
            table = self.table
            self._replaced.append(table)
            await self._retire(table.generation, list(table.handlers.values()))
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


def _free(tables: list[RoutingTable]) -> None:
    parts = [part for table in tables for part in table.parts()]
    tables.clear()  # only the containers go now; what they held is in `parts`
    while parts:
        parts.pop()
