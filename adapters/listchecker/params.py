"""listchecker's params (Mixer's `adapter.list.config.Params`), with defaults = Mixer's default config."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from mixerd.adapter import Duration

from .entries import EntryError, EntryType, parse_entry

__all__ = ["EntryType", "Params"]

_SECOND = 1_000_000_000
_ONE_MINUTE = Duration(60 * _SECOND)  # module constants: Duration is immutable, so sharing is safe
_FIVE_MINUTES = Duration(300 * _SECOND)


@dataclass
class Params:
    provider_url: str = ""
    refresh_interval: Duration = _ONE_MINUTE
    ttl: Duration = _FIVE_MINUTES
    caching_interval: Duration = _FIVE_MINUTES
    caching_use_count: int = 10000
    overrides: list[str] = field(default_factory=list)
    entry_type: EntryType = EntryType.STRINGS
    blacklist: bool = False

    def check(self) -> Iterator[tuple[str, str]]:
        """Every rule the types cannot say, as (path, reason); pure (the provider is not contacted)."""
        if self.provider_url:
            yield from _check_url(self.provider_url)
        if self.refresh_interval < _SECOND:
            yield ".refreshInterval", f"must be at least 1s, got {self.refresh_interval}"
        if self.ttl <= self.refresh_interval:
            yield ".ttl", f"must be longer than refreshInterval ({self.refresh_interval}), got {self.ttl}"
        for i, entry in enumerate(self.overrides):
            try:
                parse_entry(self.entry_type, entry)
            except EntryError as e:
                yield f".overrides[{i}]", str(e)


def _check_url(url: str) -> Iterator[tuple[str, str]]:
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - only to have a bad port raise here
    except ValueError as e:  # e.g. a bad IPv6 literal or port
        yield ".providerUrl", f"{url!r} is not a URL: {e}"
        return
    if parts.scheme not in ("http", "https"):
        yield ".providerUrl", f"{url!r} must use the http or https scheme"
    if not host:
        yield ".providerUrl", f"{url!r} has no host"
