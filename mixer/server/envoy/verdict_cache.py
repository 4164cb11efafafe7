"""The ext_authz verdict cache: answers keyed only on the attributes the rules read.

Envoy's ext_authz filter caches nothing, so mixerd keeps the cache Istio's proxies kept for Mixer's
Check (MIXER.md 8.5), on the server side:

- After a miss, the Check's references (which attributes and string-map keys the rules read, each
  EXACT or ABSENCE) make a *shape*. The verdict is stored under the shape and the values those
  attributes had: `(shape, value of each EXACT reference)`.
- A later request is looked up under every known shape: for each, its own values of the shape's
  attributes make a key, provided the shape's conditions hold for it (every EXACT attribute or map key
  present, every ABSENCE one absent; an absent map key also needs the map itself present). A deterministic
  policy that reads only those attributes would decide the same, so any hit is the right answer.
- Attributes that attribute generators filled in are read without a reference (the proxy did not send
  them); the shape requires them absent from the request, so a request that carries one of them itself
  is never answered from a verdict computed with the generated value.

Terms: a verdict serves at most `valid_use_count` requests in all (the miss that computed it is the first)
and expires `valid_duration` after it was stored, on the injected monotonic `clock` (nanoseconds). Not
stored: a verdict with no duration or with a use count of 1 or less (it may serve no other request), and
one whose code says the check itself failed (UNKNOWN, DEADLINE_EXCEEDED, ABORTED, INTERNAL, UNAVAILABLE,
DATA_LOSS): those are errors, not decisions.

Bounds: at most `max_entries` verdicts and `max_bytes` bytes, least recently used evicted first; at most
`max_shapes` shapes (dropping one drops its verdicts). An entry's bytes are what it keeps alive: its key
(the attribute values the rules read, which the caller chose and can make megabytes long), the stored
answer, and the entry's own objects. An entry over `max_bytes // ENTRY_SHARE` is not stored (nor a shape
whose references are), so no one request can push out a large part of the cache: it is answered, just
not remembered (`too_large` counts them). Config reloads: `generation()` (the runtime's config generation) is
read on every lookup; a change empties the cache, and a verdict computed while the generation changed is
not stored, so no answer outlives the config that produced it.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from ...adapter import Code
from ...attribute import Condition, RawReferences

#: Codes that report a failed check rather than a decision; such verdicts are never stored.
UNCACHEABLE_CODES = frozenset(
    {Code.UNKNOWN, Code.DEADLINE_EXCEEDED, Code.ABORTED, Code.INTERNAL, Code.UNAVAILABLE, Code.DATA_LOSS}
)

#: The Istio proxy's check cache held 10000 entries (ENVOY.md 0).
DEFAULT_MAX_ENTRIES = 10000
DEFAULT_MAX_SHAPES = 64
DEFAULT_MAX_BYTES = 64 << 20
#: An entry (or a new shape's references) larger than max_bytes // ENTRY_SHARE is not stored.
ENTRY_SHARE = 64
#: The OrderedDict slot and link of one entry, measured on CPython 3.11 (about 105 bytes).
_ENTRY_OVERHEAD = 112

#: Eviction reasons, the `reason` label of mixerd_authz_cache_evictions.
SIZE, EXPIRED, USED_UP, RELOAD = "size", "expired", "used_up", "reload"
EVICTION_REASONS = (SIZE, EXPIRED, USED_UP, RELOAD)

_EXACT = Condition.EXACT
_ABSENCE = Condition.ABSENCE


class CachedVerdict:
    """A stored answer: the serialized CheckResponse and its verdict's status code (0: allowed), with its
    remaining terms; `size` is the bytes its entry holds (key included)."""

    __slots__ = ("body", "code", "expires_at", "size", "trace", "uses_left")

    def __init__(
        self, body: bytes, code: int, expires_at: int, uses_left: int, size: int = 0, trace: Any = None
    ) -> None:
        self.body = body
        self.code = code
        self.trace = trace  # the dispatch's Trace when the decision that made it was recorded
        self.expires_at = expires_at
        self.uses_left = uses_left
        self.size = size

    @property
    def allowed(self) -> bool:
        return self.code == 0


_VERDICT_SIZE = sys.getsizeof(CachedVerdict(b"", 0, 0, 0))


def _trace_size(trace: Any) -> int:
    """Bytes a kept Trace adds (its events; their strings are the config's, shared)."""
    if trace is None:
        return 0
    events = trace.events
    return sys.getsizeof(trace) + sys.getsizeof(events) + sum(sys.getsizeof(e) for e in events)


def _footprint(value: Any) -> int:
    """Bytes a key part keeps alive: the object itself, and for a tuple its items too."""
    if type(value) is tuple:
        return sys.getsizeof(value) + sum(_footprint(v) for v in value)
    return sys.getsizeof(value)


def _frozen(value: Any) -> Any:
    """A hashable stand-in for an attribute value (a whole string map becomes its sorted items)."""
    if type(value) is dict:  # the only mutable kind of attribute value (STRING_MAP)
        return tuple(sorted(value.items()))
    return value


class Attributes(Protocol):
    """Where a shape reads a request's attributes (mixerd.server.envoy.authz_attributes.AttributeView)."""

    def get(self, name: str) -> Any | None:
        """The value of `name`, None when absent."""
        ...

    def has(self, name: str) -> bool: ...

    def map_value(self, name: str, key: str) -> str | None:
        """The value under `key` in string map `name`; None when the map or the key is absent."""
        ...


class MappingAttributes:
    """`Attributes` over a plain dict of attribute values (a decoded bag)."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values

    def get(self, name: str) -> Any | None:
        return self._values.get(name)

    def has(self, name: str) -> bool:
        return self._values.get(name) is not None

    def map_value(self, name: str, key: str) -> str | None:
        mapping = self._values.get(name)
        return None if mapping is None else mapping.get(key)


class Shape:
    """The attributes one verdict depended on, and the key a request's values give under them."""

    __slots__ = ("absent", "absent_keys", "exact", "exact_keys", "id")

    def __init__(
        self,
        shape_id: int,
        references: RawReferences,
        generated: Iterable[str] = (),
    ) -> None:
        self.id = shape_id
        exact: list[str] = []
        absent: list[str] = []
        exact_keys: list[tuple[str, str]] = []
        absent_keys: list[tuple[str, str]] = []
        referenced: set[str] = set()
        for ref, condition in references:
            if isinstance(ref, tuple):
                (exact_keys if condition == _EXACT else absent_keys).append(ref)
            else:
                referenced.add(ref)
                (exact if condition == _EXACT else absent).append(ref)
        absent.extend(name for name in generated if name not in referenced)
        self.exact = tuple(exact)
        self.absent = tuple(absent)
        self.exact_keys = tuple(exact_keys)
        self.absent_keys = tuple(absent_keys)

    def key(self, attributes: Attributes) -> tuple[Any, ...] | None:
        """The cache key for a request with these attributes, or None when the shape's conditions do not
        hold for it."""
        has, get, map_value = attributes.has, attributes.get, attributes.map_value
        for name in self.absent:
            if has(name):
                return None
        for name, map_key in self.absent_keys:
            if not has(name) or map_value(name, map_key) is not None:
                return None
        key: list[Any] = [self.id]
        for name in self.exact:
            value = get(name)
            if value is None:
                return None
            key.append(_frozen(value))
        for name, map_key in self.exact_keys:
            value = map_value(name, map_key)
            if value is None:
                return None
            key.append(value)
        return tuple(key)


def is_cacheable_references(references: RawReferences) -> bool:
    """Whether every reference is EXACT or ABSENCE (the only conditions a bag records)."""
    return all(condition in (_EXACT, _ABSENCE) for _, condition in references)


class VerdictCache:
    """Verdicts by shape and values (see the module docstring); counts its hits, misses and evictions."""

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], int] = time.monotonic_ns,
        generation: Callable[[], int] = lambda: 0,
        max_shapes: int = DEFAULT_MAX_SHAPES,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_bytes // ENTRY_SHARE
        self.max_shapes = max(1, max_shapes)
        self.bytes = 0  # what the entries hold now
        self._clock = clock
        self._generation_of = generation
        self._generation = generation()
        self._entries: OrderedDict[tuple[Any, ...], CachedVerdict] = OrderedDict()
        # Most recently hit first, so the shape that answers most requests is tried first.
        self._shapes: list[Shape] = []
        self._shape_by_refs: dict[tuple[RawReferences, tuple[str, ...]], Shape] = {}
        self._next_shape_id = 0
        self.hits = 0
        self.misses = 0
        self.too_large = 0  # verdicts answered but not stored: their entry was over max_entry_bytes
        self.evictions: dict[str, int] = dict.fromkeys(EVICTION_REASONS, 0)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def shapes(self) -> int:
        return len(self._shapes)

    def generation(self) -> int:
        """The config generation now; a change since the last call empties the cache."""
        now = self._generation_of()
        if now != self._generation:
            self.evictions[RELOAD] += len(self._entries)
            self._entries.clear()
            self.bytes = 0
            self._shapes.clear()
            self._shape_by_refs.clear()
            self._generation = now
        return now

    def lookup(self, attributes: Attributes) -> CachedVerdict | None:
        """The stored verdict for a request with these attributes, or None (a miss).

        Call `generation()` first (it is what `store` needs, and it clears the cache after a reload).
        """
        entries = self._entries
        for position, shape in enumerate(self._shapes):
            key = shape.key(attributes)
            if key is None:
                continue
            verdict = entries.get(key)
            if verdict is None:
                continue
            if self._clock() >= verdict.expires_at:
                del entries[key]
                self.bytes -= verdict.size
                self.evictions[EXPIRED] += 1
                continue
            verdict.uses_left -= 1
            if verdict.uses_left <= 0:
                del entries[key]
                self.bytes -= verdict.size
                self.evictions[USED_UP] += 1
            else:
                entries.move_to_end(key)
            if position:
                self._shapes.insert(0, self._shapes.pop(position))
            self.hits += 1
            return verdict
        self.misses += 1
        return None

    def store(
        self,
        generation: int,
        references: RawReferences,
        attributes: Attributes,
        *,
        status_code: int,
        valid_duration_ns: int,
        valid_use_count: int,
        body: bytes,
        generated: Iterable[str] = (),
        trace: Any = None,
    ) -> bool:
        """Keep a verdict computed for `attributes` under the config `generation` read before it was
        computed; False when it is not stored (see the module docstring for why it might not be)."""
        if (
            status_code in UNCACHEABLE_CODES
            or valid_duration_ns <= 0
            or valid_use_count <= 1  # the request that computed it was its one use
            or generation != self.generation()
            or not is_cacheable_references(references)
        ):
            return False
        shape = self._shape(references, tuple(generated))
        if shape is None:
            self.too_large += 1
            return False
        key = shape.key(attributes)
        if key is None:  # cannot happen for the attributes the references were recorded on; be safe
            return False
        size = _ENTRY_OVERHEAD + _VERDICT_SIZE + sys.getsizeof(body) + _footprint(key) + _trace_size(trace)
        if size > self.max_entry_bytes:
            self.too_large += 1
            return False
        entries = self._entries
        replaced = entries.pop(key, None)
        if replaced is not None:
            self.bytes -= replaced.size
        entries[key] = CachedVerdict(
            body, status_code, self._clock() + valid_duration_ns, valid_use_count - 1, size, trace
        )
        self.bytes += size
        while len(entries) > self.max_entries or self.bytes > self.max_bytes:
            _, dropped = entries.popitem(last=False)
            self.bytes -= dropped.size
            self.evictions[SIZE] += 1
        return True

    def _shape(self, references: RawReferences, generated: tuple[str, ...]) -> Shape | None:
        """The shape of these references, made if new; None when they are too large to keep (a rule that
        indexes a map with a key the caller sent puts that key in them)."""
        found = self._shape_by_refs.get((references, generated))
        if found is not None:
            return found
        if _footprint((references, generated)) > self.max_entry_bytes:
            return None
        shape = Shape(self._next_shape_id, references, generated)
        self._next_shape_id += 1
        if len(self._shapes) >= self.max_shapes:
            self._drop_shape(self._shapes[-1])
        self._shapes.append(shape)
        self._shape_by_refs[(references, generated)] = shape
        return shape

    def _drop_shape(self, shape: Shape) -> None:
        self._shapes.remove(shape)
        for refs, known in list(self._shape_by_refs.items()):
            if known is shape:
                del self._shape_by_refs[refs]
        stale = [key for key in self._entries if key[0] == shape.id]
        for key in stale:
            self.bytes -= self._entries.pop(key).size
        self.evictions[SIZE] += len(stale)
