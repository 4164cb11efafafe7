"""The kubernetesenv handler: `handle_kubernetes` reads the pod cache and answers the template's output
fields; the watchers (watcher.py) fill the cache in the background. Nothing on the request path waits
for the cluster.

Outside a cluster (or with a kubeconfig that cannot be used) the handler is built anyway but reports
itself unavailable (`unavailable` holds why; logged once, at build): every lookup is skipped and the
instance's bindings take their fallbacks. Lookups before the first pod list are skipped too.
`generation_stats()` counts lookups (one per side with a uid or an address): hits, misses, skipped,
and the watchers' failed list/watch attempts (sync_failures).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

from kubernetes.client import ApiClient

from mixerd.adapter import Env, KubernetesInstance

from .cache import PodCache, Record
from .cluster import NoCluster, connect
from .params import Params, registries_namespace
from .records import PodRecord, is_unspecified
from .watcher import Watcher, resources


class KubernetesEnvHandler:
    def __init__(self, env: Env) -> None:
        self._env = env
        self._name = env.handler
        self._log = env.logger
        params: Params = env.params
        self.cache = PodCache()
        # Resolved for the record (and the docs): mixerd watches only its own cluster.
        self.registries_namespace = registries_namespace(params)
        self.unavailable: str | None = None
        self._hits = self._misses = self._skipped = self._sync_failures = 0
        self._failing: set[str] = set()  # resources whose last list/watch failed (logged once per streak)
        self._watchers: list[Watcher] = []
        self._api: ApiClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    # -- the request path ----------------------------------------------------------------------------

    def handle_kubernetes(self, instance: KubernetesInstance) -> Mapping[str, Any]:
        out: dict[str, Any] = {}
        source = self._find(instance.source_uid, instance.source_ip)
        if source is not None:
            out.update(self.cache.fields(source, destination=False))
        destination = self._find(instance.destination_uid, instance.destination_ip)
        if destination is not None:
            out.update(self.cache.fields(destination, destination=True))
            container = destination.ports.get(instance.destination_port)
            if container is not None:
                out["destination_container_name"] = container
        return out

    def _find(self, uid: str, ip: bytes) -> PodRecord | None:
        """The pod by uid, or by address when the uid is empty; None when there is nothing to look up."""
        if not uid and is_unspecified(ip):
            return None
        if self.unavailable is not None or not self.cache.synced:
            self._skipped += 1
            return None
        pod = self.cache.by_uid(uid) if uid else self.cache.by_ip(ip)
        if pod is None:
            self._misses += 1
        else:
            self._hits += 1
        return pod

    # -- state ---------------------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        return self.unavailable is None

    @property
    def synced(self) -> bool:
        """Pods have been listed: lookups are answered."""
        return self.cache.synced

    def generation_stats(self) -> Mapping[str, int]:
        """Lookups answered from the cache (hits, misses), skipped (no cluster, or pods not listed yet),
        and failed list/watch attempts of the watchers."""
        return {
            "hits": self._hits,
            "misses": self._misses,
            "skipped": self._skipped,
            "sync_failures": self._sync_failures,
        }

    def watcher_threads(self) -> list[threading.Thread]:
        """The watcher threads still running (for tests and introspection)."""
        return [t for t in threading.enumerate() if t.name.startswith(f"{self._name} watch ")]

    # -- the background side ----------------------------------------------------------------------------

    def mark_unavailable(self, reason: str) -> None:
        self.unavailable = reason
        self._log.warning("%s: unavailable, no attributes will be generated: %s", self._name, reason)

    def start(self, api: ApiClient, watchers: list[Watcher]) -> None:
        """Run `watchers` in threads of their own until the handler closes (needs the running loop)."""
        self._loop = asyncio.get_running_loop()
        self._api = api
        self._watchers = watchers
        self._env.spawn(self._supervise, name=f"{self._name} watchers")

    async def _supervise(self) -> None:
        for w in self._watchers:
            threading.Thread(target=w.run, name=f"{self._name} watch {w.resource.name}", daemon=True).start()
        try:
            await asyncio.Event().wait()  # until cancelled at close
        finally:
            self._stop_watchers()

    def post(self, fn: Any, *args: Any) -> bool:
        """Run fn(*args) on the loop (called from watcher threads); False once there is no one to tell."""
        if self._closed or self._loop is None:
            return False
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed
            return False
        return True

    # Sink: what the watchers report, on the loop.

    def listed(self, resource: str, records: list[Record]) -> None:
        if self._closed:
            return
        self.cache.replace_records(resource, records)
        if resource in self._failing:
            self._failing.discard(resource)
            self._log.info("%s: %s listed again (%d objects)", self._name, resource, len(records))

    def changed(self, resource: str, event_type: str, record: Record) -> None:
        if self._closed:
            return
        if event_type == "DELETED":
            self.cache.remove(resource, record.key)
        else:
            self.cache.put_record(resource, record)

    def failed(self, resource: str, reason: str) -> None:
        self._sync_failures += 1
        if resource not in self._failing and not self._closed:
            self._failing.add(resource)
            self._log.warning("%s: cannot list or watch %s (retrying): %s", self._name, resource, reason)

    def _stop_watchers(self) -> None:
        for w in self._watchers:
            w.stop()

    def close(self) -> None:
        """Stop the watchers (their threads end on their own, at once for a watch in progress)."""
        if self._closed:
            return
        self._closed = True
        self._stop_watchers()
        if self._api is not None:
            # Closes the idle pooled connections; one a thread still holds is closed when it comes back.
            self._api.close()


def build(env: Env) -> KubernetesEnvHandler:
    handler = KubernetesEnvHandler(env)
    try:
        api = connect(env.params)
    except NoCluster as e:
        handler.mark_unavailable(str(e))
        return handler
    resync_s = env.params.cache_refresh_duration / 1_000_000_000
    handler.start(api, [Watcher(r, handler, handler.post, resync_s) for r in resources(api)])
    return handler
