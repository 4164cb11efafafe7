"""The listchecker handler: answers listentry checks from overrides plus a list fetched over HTTP(S)."""

from __future__ import annotations

import asyncio
import hashlib
import urllib.request

from mixerd.adapter import CheckResult, Code, Duration, Env, ListEntryInstance

from .entries import BadValue, EntryError, EntryList, lookup_key, parse_body
from .params import Params

_MAX_FETCH_TIMEOUT_S = 30.0


class ListUnavailable(RuntimeError):
    """No list is loaded and the last fetch failed; the runtime answers the Check with INTERNAL."""


class ListChecker:
    """One handler. With no provider the list is the overrides; with one, it is loaded in the background
    by `refresh()` (overrides always included) and dropped when not refreshed within the ttl."""

    def __init__(self, params: Params, env: Env) -> None:
        self._params = params
        self._env = env
        self._url = params.provider_url
        self._kind = params.entry_type
        self._ok = self._verdict(Code.OK, "")
        self._list: EntryList | None = None if self._url else EntryList(self._kind, params.overrides)
        self._loaded_at = 0  # env.clock() of the last successful fetch
        self._sha1 = b""  # of the body the loaded list came from
        self._error = ""  # the last fetch failure, until a fetch succeeds
        self._lock: asyncio.Lock | None = None  # made in the loop; keeps refreshes from overlapping
        self._closed = False

    def handle_listentry(self, instance: ListEntryInstance) -> CheckResult:
        try:
            key, text = lookup_key(self._kind, instance.value)
        except BadValue as e:
            return self._verdict(Code.INVALID_ARGUMENT, str(e))
        entries = self._current()
        if entries is None:
            if self._error:
                raise ListUnavailable(f"no list loaded from {self._url}: {self._error}")
            # Nothing fetched yet and nothing failed: an empty OK, which the proxy must not cache.
            return CheckResult(valid_duration=Duration(0), valid_use_count=0)
        found = key in entries
        if self._params.blacklist:
            if found:
                return self._verdict(Code.PERMISSION_DENIED, f"{text} is blacklisted")
        elif not found:
            return self._verdict(Code.PERMISSION_DENIED, f"{text} is not whitelisted")
        return self._ok

    async def refresh(self) -> None:
        """Fetch the provider's list once and load it (the first fetch and every refresh_interval)."""
        if self._closed or not self._url:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            try:
                body = await asyncio.to_thread(self._fetch)
            except Exception as e:  # any network or HTTP failure; cancellation still goes through
                self._fail(f"fetching {self._url} failed: {e}")
                return
            digest = hashlib.sha1(body).digest()
            if self._current() is not None and digest == self._sha1:
                self._loaded_at = self._env.clock()  # same list: only the ttl starts again
                self._error = ""
                return
            try:  # in a thread too: a long list takes a while to parse, and the loop must not wait
                entries = await asyncio.to_thread(self._parse, body)
            except EntryError as e:
                self._fail(f"the list from {self._url} is bad: {e}")  # the previous list stays until the ttl
                return
            self._list, self._sha1, self._loaded_at, self._error = entries, digest, self._env.clock(), ""
            log = self._env.logger
            log.info("%s: loaded %d list entries from %s", self._env.handler, len(entries), self._url)

    def close(self) -> None:
        self._closed = True  # the runtime cancels the refresh tasks

    def _fetch(self) -> bytes:
        timeout = min(self._params.refresh_interval.total_seconds(), _MAX_FETCH_TIMEOUT_S)
        with urllib.request.urlopen(self._url, timeout=timeout) as response:  # http(s) only: validated
            return response.read()

    def _parse(self, body: bytes) -> EntryList:
        return EntryList(self._kind, [*self._params.overrides, *parse_body(self._kind, body)])

    def _fail(self, message: str) -> None:
        self._error = message
        self._env.logger.warning("%s: %s", self._env.handler, message)

    def _current(self) -> EntryList | None:
        """The loaded list, purged first when it has not been refreshed within the ttl."""
        if self._list is not None and self._url and self._env.clock() - self._loaded_at > self._params.ttl:
            self._env.logger.warning(
                "%s: dropping the list from %s: not refreshed within %s",
                *(self._env.handler, self._url, self._params.ttl),
            )
            self._list, self._sha1 = None, b""
        return self._list

    def _verdict(self, status: Code, message: str) -> CheckResult:
        return CheckResult(
            status=status,
            message=message,
            valid_duration=self._params.caching_interval,
            valid_use_count=self._params.caching_use_count,
        )
