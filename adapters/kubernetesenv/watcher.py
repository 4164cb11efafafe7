"""Keeping the cache current: one watcher thread per resource (pods, ReplicaSets, Jobs) lists it, then
watches it from the list's resourceVersion, and lists it again every `cacheRefreshDuration` (the resync),
after a watch expired (410 Gone), and after any failure (with back-off, 1s doubling up to 30s).

The kubernetes client blocks, so this runs in daemon threads; what they learn is handed to the event
loop through `post`, so the cache is only ever written on the loop, between requests.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from .cache import CONVERTERS, JOBS, PODS, REPLICASETS, Record

_LIST_PAGE = 500  # items per list request: a big cluster is listed in pages, as client-go does
_CONNECT_TIMEOUT_S = 10.0
_READ_SLACK_S = 30.0  # a watch ends server-side at timeout_seconds; give up on a silent one after this


class Sink(Protocol):
    """What the watchers report, always called on the event loop."""

    def listed(self, resource: str, records: list[Record]) -> None: ...
    def changed(self, resource: str, event_type: str, record: Record) -> None: ...
    def failed(self, resource: str, reason: str) -> None: ...


Post = Callable[..., bool]  # post(fn, *args): run fn(*args) on the loop; False once the loop is gone


@dataclass(frozen=True)
class Resource:
    name: str
    list_fn: Callable[..., Any]  # a bound list_*_for_all_namespaces method
    model: type


def resources(api: client.ApiClient) -> list[Resource]:
    return [
        Resource(PODS, client.CoreV1Api(api).list_pod_for_all_namespaces, client.V1Pod),
        Resource(REPLICASETS, client.AppsV1Api(api).list_replica_set_for_all_namespaces, client.V1ReplicaSet),
        Resource(JOBS, client.BatchV1Api(api).list_job_for_all_namespaces, client.V1Job),
    ]


class Watcher:
    """List and watch one resource until `stop()`; run `run()` in a thread of its own."""

    def __init__(
        self,
        resource: Resource,
        sink: Sink,
        post: Post,
        resync_s: float,
        *,
        min_backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.resource = resource
        self._sink = sink
        self._post = post
        self._resync_s = resync_s
        self._min_backoff_s = min_backoff_s
        self._max_backoff_s = max_backoff_s
        self._convert = CONVERTERS[resource.name]
        self._stopping = threading.Event()
        self._watch: watch.Watch | None = None

    def stop(self) -> None:
        """Ask the thread to end; a watch in progress is cut at once (its socket is shut down)."""
        self._stopping.set()
        current = self._watch
        if current is not None:
            current.stop()

    def run(self) -> None:
        version: str | None = None  # None: list before watching
        next_list = 0.0
        backoff = self._min_backoff_s
        while not self._stopping.is_set():
            try:
                if version is None or time.monotonic() >= next_list:
                    version = self._list()
                    next_list = time.monotonic() + self._resync_s
                started = time.monotonic()
                version = self._watch_until(version, next_list)
                backoff = self._min_backoff_s
                if time.monotonic() - started < self._min_backoff_s:
                    # A watch the server ends at once would otherwise be reopened in a busy loop.
                    self._stopping.wait(self._min_backoff_s)
            except ApiException as e:
                if e.status == 410:  # our resourceVersion is too old: list again, now
                    version = None
                    continue
                version = None  # after a failure, start again from a full list
                backoff = self._fail(f"API error {e.status}: {e.reason}", backoff)
            except Exception as e:
                if self._stopping.is_set():
                    break  # stop() cut the connection under us
                version = None
                backoff = self._fail(f"{type(e).__name__}: {e}", backoff)

    def _fail(self, reason: str, backoff: float) -> float:
        if not self._post(self._sink.failed, self.resource.name, reason):
            self._stopping.set()
        self._stopping.wait(backoff)
        return min(backoff * 2, self._max_backoff_s)

    def _list(self) -> str:
        """List every object, a page at a time; hand the records to the loop; return the list's version."""
        records: list[Record] = []
        token: str | None = None
        while True:
            page = self.resource.list_fn(
                limit=_LIST_PAGE, _continue=token, _request_timeout=(_CONNECT_TIMEOUT_S, 60.0)
            )
            records.extend(r for r in map(self._convert, page.items or ()) if r is not None)
            token = getattr(page.metadata, "_continue", None)
            if not token:
                break
        if not self._post(self._sink.listed, self.resource.name, records):
            self._stopping.set()
        return getattr(page.metadata, "resource_version", None) or "0"

    def _watch_until(self, version: str, deadline: float) -> str:
        """Watch from `version` until `deadline` (the server ends the watch then); the last version seen."""
        timeout = max(1, math.ceil(deadline - time.monotonic()))
        current = watch.Watch(return_type=self.resource.model)
        self._watch = current
        if self._stopping.is_set():  # stop() came before there was a watch to cut
            self._watch = None
            return version
        try:
            events = current.stream(
                self.resource.list_fn,
                resource_version=version,
                timeout_seconds=timeout,
                allow_watch_bookmarks=True,
                _request_timeout=(_CONNECT_TIMEOUT_S, timeout + _READ_SLACK_S),
            )
            for event in events:
                if self._stopping.is_set():
                    break
                kind = event.get("type")
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    record = self._convert(event.get("object"))
                    name = self.resource.name
                    posted = record is None or self._post(self._sink.changed, name, kind, record)
                    if not posted:
                        self._stopping.set()
                version = current.resource_version or version
        finally:
            self._watch = None
        return version
