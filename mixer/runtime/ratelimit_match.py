"""A request descriptor matched against a domain's descriptor tree, as envoyproxy/ratelimit matches it.

The entries walk the tree one level each: key and value first, then a value with `*` wildcards (in
config order), then the key alone. The limits apply only when the walk ends on the request's last entry
(the same depth), and a more specific match never falls back when its level has nothing further.

The match also names the descriptor's counter (a shared wildcard counts under its pattern) and its stats
key, envoyproxy/ratelimit's `<key_value>.<key_value>...` without the domain (its config_impl.go's
GetLimit, observed, not its README, where the two differ): a descriptor matched by key alone rolls up
under the key, a wildcard under its pattern, unless `value_to_metric` (at that level) or
`detailed_metric` (on the matched descriptor) put the request's values in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from ..config.ratelimit_model import DescriptorConfig, DescriptorTable

_EXACT, _WILDCARD, _ANY = 0, 1, 2


class Match(NamedTuple):  # a tuple: made for every request descriptor, and cheap to make
    node: DescriptorConfig
    counter: tuple[tuple[str, str], ...]  # the entries that name its counter
    stat: str  # its stats key for this request
    rollup: str  # its stats key with no request value in it (the config's path): `stat` past a cap


def match(table: DescriptorTable, entries: Sequence[tuple[str, str]]) -> Match | None:
    """The config descriptor a request descriptor ends on at its own depth; None when the walk stops
    earlier or goes deeper than the config."""
    level = table
    last = len(entries) - 1
    counter: list[tuple[str, str]] = []
    per_value = False
    for i, (key, value) in enumerate(entries):
        # _step, inlined: this is every request's path
        shared = False
        found = level.exact.get((key, value))
        if found is None:
            for candidate in level.wildcards.get(key, ()):
                if candidate.pattern is not None and candidate.pattern.fullmatch(value):
                    found, shared = candidate, candidate.share_threshold
                    break
            else:
                found = level.any_value.get(key)
                if found is None:
                    return None
        counter.append((key, found.value) if shared and found.value is not None else (key, value))
        per_value = per_value or found.value_to_metric
        if i == last:
            rollup = found.stat_name
            # (the stats key with values in it is rare: the walk is done again for it)
            stat = _stat(table, entries) if per_value or found.detailed_metric else rollup
            return Match(found, tuple(counter), stat, rollup)
        if not found.children:
            return None  # the request goes deeper than the config: no limit (envoyproxy/ratelimit)
        level = found.children
    return None


def _step(level: DescriptorTable, key: str, value: str) -> tuple[DescriptorConfig | None, int]:
    """The descriptor one entry matches at `level`, and how: by value, by wildcard, or by key alone."""
    found = level.exact.get((key, value))
    if found is not None:
        return found, _EXACT
    for candidate in level.wildcards.get(key, ()):
        if candidate.pattern is not None and candidate.pattern.fullmatch(value):
            return candidate, _WILDCARD
    return level.any_value.get(key), _ANY


def _stat(table: DescriptorTable, entries: Sequence[tuple[str, str]]) -> str:
    """The stats key with the request's values where the flags put them (for a request `match` found)."""
    path: list[tuple[DescriptorConfig, int]] = []
    level = table
    for key, value in entries:
        node, how = _step(level, key, value)
        assert node is not None
        path.append((node, how))
        level = node.children
    parts = []
    if path[-1][0].detailed_metric:
        # Every level's key_value from the request; a shared wildcard keeps its pattern, and then
        # empty values lose their `_` (envoyproxy/ratelimit builds this case apart).
        shared = any(how == _WILDCARD and node.share_threshold for node, how in path)
        for (node, how), (key, value) in zip(path, entries, strict=True):
            if how == _WILDCARD and node.share_threshold:
                parts.append(f"{key}_{node.value}")
            elif shared and not value:
                parts.append(key)
            else:
                parts.append(f"{key}_{value}")
        return ".".join(parts)
    for (node, how), (key, value) in zip(path, entries, strict=True):
        if how == _EXACT:
            shown: str | None = value
        elif how == _WILDCARD:
            shown = value if node.value_to_metric and not node.share_threshold else node.value
        else:
            shown = value if node.value_to_metric else None
        parts.append(f"{key}_{shown}" if shown else key)
    return ".".join(parts)


def override_stat(entries: Sequence[tuple[str, str]]) -> str:
    """The stats key of a descriptor that carries Envoy's limit override: every entry's key_value (the
    key alone for an empty value), as envoyproxy/ratelimit names it."""
    return ".".join(f"{key}_{value}" if value else key for key, value in entries)
