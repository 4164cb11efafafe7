"""The ext_authz verdict cache (mixer/server/envoy/verdict_cache.py): shapes and keys, terms, bounds, reloads.

The clock is a list the test moves by hand; the generation a variable the test bumps.
"""

from __future__ import annotations

from typing import Any

import pytest

from mixerd.adapter import Code
from mixerd.attribute import AttributeBag, Condition, RawReferences
from mixerd.server.envoy.verdict_cache import MappingAttributes, Shape, VerdictCache

EXACT, ABSENCE, REGEX = Condition.EXACT, Condition.ABSENCE, Condition.REGEX
SECOND = 1_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 1_000 * SECOND

    def __call__(self) -> int:
        return self.now


class Generation:
    def __init__(self) -> None:
        self.value = 1

    def __call__(self) -> int:
        return self.value


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def generation() -> Generation:
    return Generation()


@pytest.fixture
def cache(clock: Clock, generation: Generation) -> VerdictCache:
    return VerdictCache(100, clock=clock, generation=generation)


def store(
    cache: VerdictCache,
    references: RawReferences,
    values: dict[str, Any],
    *,
    body: bytes = b"verdict",
    code: int = 0,
    seconds: float = 60,
    uses: int = 10000,
    generation: int | None = None,
    generated: tuple[str, ...] = (),
) -> bool:
    return cache.store(
        cache.generation() if generation is None else generation,
        references,
        MappingAttributes(values),
        status_code=code,
        valid_duration_ns=int(seconds * SECOND),
        valid_use_count=uses,
        body=body,
        generated=generated,
    )


def answer(cache: VerdictCache, values: dict[str, Any]) -> bytes | None:
    cache.generation()
    found = cache.lookup(MappingAttributes(values))
    return None if found is None else found.body


def key_of(shape: Shape, values: dict[str, Any]) -> tuple[Any, ...] | None:
    return shape.key(MappingAttributes(values))


USER_REFS: RawReferences = ((("request.headers", "x-user"), EXACT), ("request.path", EXACT))


def request(user: str | None = "alice", path: str = "/a", **more: Any) -> dict[str, Any]:
    headers = {"x-request-id": "r1"} if user is None else {"x-user": user, "x-request-id": "r1"}
    return {"request.headers": headers, "request.path": path, **more}


# -- shapes and keys ----------------------------------------------------------------------------------


def test_a_key_holds_the_values_of_the_exact_references_only() -> None:
    shape = Shape(7, USER_REFS)
    # the shape's id, then its attributes' values, then its map keys' values
    assert key_of(shape, request("alice", "/a", **{"request.id": "1"})) == (7, "/a", "alice")
    assert key_of(shape, request("alice", "/a", **{"request.id": "2"})) == (7, "/a", "alice")
    assert key_of(shape, request("bob", "/a")) == (7, "/a", "bob")


def test_an_exact_reference_needs_the_attribute_or_key_present() -> None:
    shape = Shape(0, USER_REFS)
    assert key_of(shape, request(None)) is None
    assert key_of(shape, {"request.path": "/a"}) is None
    assert key_of(shape, {"request.headers": {"x-user": "alice"}}) is None


def test_an_absence_reference_needs_the_attribute_absent() -> None:
    shape = Shape(0, (("request.api_key", ABSENCE), ("request.path", EXACT)))
    assert key_of(shape, {"request.path": "/a"}) == (0, "/a")
    assert key_of(shape, {"request.path": "/a", "request.api_key": "k"}) is None


def test_an_absent_map_key_needs_the_map_present_and_the_key_absent() -> None:
    shape = Shape(0, ((("request.headers", "cookie"), ABSENCE),))
    assert key_of(shape, {"request.headers": {}}) == (0,)
    assert key_of(shape, {"request.headers": {"cookie": "s=1"}}) is None
    assert key_of(shape, {}) is None  # without the map, `request.headers["cookie"]` evaluates differently


def test_a_whole_map_read_keys_on_all_of_it() -> None:
    shape = Shape(0, (("source.labels", EXACT),))
    assert key_of(shape, {"source.labels": {"b": "2", "a": "1"}}) == shape.key(
        MappingAttributes({"source.labels": {"a": "1", "b": "2"}})
    )
    assert key_of(shape, {"source.labels": {"a": "1"}}) != shape.key(
        MappingAttributes({"source.labels": {"a": "1", "b": "2"}})
    )


def test_generated_attributes_must_be_absent_from_the_request() -> None:
    shape = Shape(0, (("source.ip", EXACT),), generated=("source.namespace", "source.ip"))
    ip = b"\x0a\x00\x00\x01"
    assert shape.absent == ("source.namespace",)  # referenced ones keep their own condition
    assert key_of(shape, {"source.ip": ip}) == (0, ip)
    assert key_of(shape, {"source.ip": ip, "source.namespace": "sent-by-the-request"}) is None


def test_references_recorded_by_a_bag_make_the_shape() -> None:
    bag = AttributeBag.wrap(request("alice"))
    bag.map_get("request.headers", "x-user")
    bag.map_get("request.headers", "cookie")
    bag.get("request.api_key")
    shape = Shape(0, bag.reference_items())
    assert key_of(shape, request("alice")) == (0, "alice")
    assert key_of(shape, request("alice", **{"request.api_key": "k"})) is None


# -- hits and misses ----------------------------------------------------------------------------------


def test_a_stored_verdict_answers_requests_with_the_same_referenced_values(cache: VerdictCache) -> None:
    assert answer(cache, request("alice")) is None
    assert store(cache, USER_REFS, request("alice"), body=b"allow alice")
    assert answer(cache, request("alice", **{"request.id": "other"})) == b"allow alice"
    assert answer(cache, request("bob")) is None
    assert answer(cache, request("alice", "/b")) is None
    assert (cache.hits, cache.misses, len(cache)) == (1, 3, 1)


def test_each_shape_is_tried(cache: VerdictCache) -> None:
    store(cache, (("request.path", EXACT),), {"request.path": "/public"}, body=b"public")
    store(cache, USER_REFS, request("alice", "/private"), body=b"alice private")
    assert answer(cache, request("bob", "/public")) == b"public"
    assert answer(cache, request("alice", "/private")) == b"alice private"
    assert cache.shapes == 2


def test_a_verdict_that_read_nothing_answers_everything(cache: VerdictCache) -> None:
    store(cache, (), request("alice"), body=b"allow all")
    assert answer(cache, {}) == b"allow all"
    assert answer(cache, request("anyone", "/anywhere")) == b"allow all"


def test_denials_are_cached_and_say_so(cache: VerdictCache) -> None:
    assert store(cache, USER_REFS, request("blocked"), body=b"deny", code=Code.PERMISSION_DENIED)
    cache.generation()
    found = cache.lookup(MappingAttributes(request("blocked")))
    assert found is not None and (found.body, found.allowed) == (b"deny", False)


# -- terms ----------------------------------------------------------------------------------------------


def test_a_verdict_expires_after_its_valid_duration(cache: VerdictCache, clock: Clock) -> None:
    store(cache, USER_REFS, request(), seconds=10)
    clock.now += 10 * SECOND - 1
    assert answer(cache, request()) == b"verdict"
    clock.now += 1
    assert answer(cache, request()) is None
    assert (cache.evictions["expired"], len(cache)) == (1, 0)


def test_a_verdict_serves_its_use_count_in_all(cache: VerdictCache) -> None:
    store(cache, USER_REFS, request(), uses=3)  # the request that computed it was the first use
    assert answer(cache, request()) == b"verdict"
    assert answer(cache, request()) == b"verdict"
    assert answer(cache, request()) is None
    assert (cache.hits, cache.evictions["used_up"], len(cache)) == (2, 1, 0)


@pytest.mark.parametrize(
    ("code", "seconds", "uses", "references"),
    [
        (Code.INTERNAL, 60, 100, USER_REFS),
        (Code.UNAVAILABLE, 60, 100, USER_REFS),
        (Code.UNKNOWN, 60, 100, USER_REFS),
        (Code.DEADLINE_EXCEEDED, 60, 100, USER_REFS),
        (0, 0, 100, USER_REFS),
        (0, -1, 100, USER_REFS),
        (0, 60, 1, USER_REFS),
        (0, 60, 0, USER_REFS),
        (0, 60, 100, (("request.path", REGEX),)),
    ],
)
def test_what_is_not_stored(
    cache: VerdictCache, code: int, seconds: float, uses: int, references: Any
) -> None:
    assert not store(cache, references, request(), code=code, seconds=seconds, uses=uses)
    assert answer(cache, request()) is None and len(cache) == 0


# -- bounds ---------------------------------------------------------------------------------------------


def test_the_least_recently_used_verdict_goes_first(clock: Clock, generation: Generation) -> None:
    cache = VerdictCache(2, clock=clock, generation=generation)
    store(cache, USER_REFS, request("a"), body=b"a")
    store(cache, USER_REFS, request("b"), body=b"b")
    assert answer(cache, request("a")) == b"a"  # a is now the most recently used
    store(cache, USER_REFS, request("c"), body=b"c")
    assert answer(cache, request("b")) is None
    assert answer(cache, request("a")) == b"a"
    assert answer(cache, request("c")) == b"c"
    assert (cache.evictions["size"], len(cache)) == (1, 2)


def test_dropping_a_shape_drops_its_verdicts(clock: Clock, generation: Generation) -> None:
    cache = VerdictCache(100, clock=clock, generation=generation, max_shapes=2)
    store(cache, (("request.path", EXACT),), {"request.path": "/x"}, body=b"x")
    store(cache, (("request.method", EXACT),), {"request.method": "GET"}, body=b"get")
    assert answer(cache, {"request.path": "/x"}) == b"x"  # the path shape is now the most recently hit
    store(cache, (("request.host", EXACT),), {"request.host": "h"}, body=b"h")
    assert cache.shapes == 2
    assert answer(cache, {"request.method": "GET"}) is None
    assert answer(cache, {"request.path": "/x"}) == b"x"
    assert answer(cache, {"request.host": "h"}) == b"h"
    assert (cache.evictions["size"], len(cache)) == (1, 2)


def test_a_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_entries must be at least 1, got 0"):
        VerdictCache(0)
    with pytest.raises(ValueError, match="max_bytes must be at least 1, got 0"):
        VerdictCache(10, max_bytes=0)


def held(cache: VerdictCache) -> int:
    """The bytes the entries say they hold, added up (what `cache.bytes` must equal)."""
    return sum(verdict.size for verdict in cache._entries.values())


def test_the_byte_budget_holds_with_large_entries(clock: Clock, generation: Generation) -> None:
    cache = VerdictCache(10_000, max_bytes=1 << 20, clock=clock, generation=generation)
    assert cache.max_entry_bytes == 16 << 10  # 1/64 of the budget
    for i in range(500):  # 500 distinct 10 KB headers: 5 MB of keys for a 1 MiB budget
        assert store(cache, USER_REFS, request(f"{i:05d}" + "x" * 10_000), body=b"v%d" % i)
    assert cache.bytes == held(cache) <= 1 << 20
    assert 90 <= len(cache) <= 101 and cache.evictions["size"] == 500 - len(cache)  # ~10.4 KB each
    assert answer(cache, request("00499" + "x" * 10_000)) == b"v499"  # the most recent are kept
    assert answer(cache, request("00000" + "x" * 10_000)) is None


def test_an_entry_counts_its_key_and_its_answer(cache: VerdictCache) -> None:
    store(cache, USER_REFS, request("a"), body=b"")
    small = cache.bytes
    store(cache, USER_REFS, request("b" * 1001, path="/a" + "p" * 1000), body=b"x" * 3000)
    assert cache.bytes - small >= 5000
    store(cache, USER_REFS, request("b" * 1001, path="/a" + "p" * 1000), body=b"")  # replaced, not added
    assert cache.bytes - small < 2500 and cache.bytes == held(cache)


def test_an_entry_over_its_share_of_the_budget_is_not_stored(clock: Clock, generation: Generation) -> None:
    cache = VerdictCache(10_000, max_bytes=1 << 20, clock=clock, generation=generation)
    store(cache, USER_REFS, request("small"), body=b"small")
    assert not store(cache, USER_REFS, request("x" * 20_000), body=b"big")
    assert (cache.too_large, len(cache), cache.evictions["size"]) == (1, 1, 0)
    assert answer(cache, request("x" * 20_000)) is None
    assert answer(cache, request("small")) == b"small"
    assert not store(cache, USER_REFS, request("small"), body=b"y" * 20_000)  # the answer counts too
    assert cache.too_large == 2 and cache.bytes == held(cache)


def test_references_too_large_to_keep_make_no_shape(clock: Clock, generation: Generation) -> None:
    cache = VerdictCache(10_000, max_bytes=1 << 20, clock=clock, generation=generation)
    huge_key = "k" * 20_000  # a rule that indexes a map with a key the caller sent
    assert not store(cache, (((("request.headers", huge_key)), EXACT),), {"request.headers": {huge_key: "v"}})
    assert (cache.shapes, cache.too_large) == (0, 1)


def test_bytes_go_with_every_entry_that_goes(
    cache: VerdictCache, clock: Clock, generation: Generation
) -> None:
    store(cache, USER_REFS, request("expires"), seconds=1)
    store(cache, USER_REFS, request("used"), uses=2)
    store(cache, USER_REFS, request("stays"))
    clock.now += 2 * SECOND
    assert answer(cache, request("expires")) is None  # expired
    assert answer(cache, request("used")) is not None  # its last use
    assert len(cache) == 1 and cache.bytes == held(cache) > 0
    generation.value += 1
    cache.generation()
    assert (len(cache), cache.bytes) == (0, 0)


# -- reloads ----------------------------------------------------------------------------------------------


def test_a_new_config_generation_empties_the_cache(cache: VerdictCache, generation: Generation) -> None:
    store(cache, USER_REFS, request("a"))
    store(cache, USER_REFS, request("b"))
    generation.value += 1
    assert answer(cache, request("a")) is None
    assert (cache.evictions["reload"], len(cache), cache.shapes) == (2, 0, 0)


def test_a_verdict_computed_across_a_reload_is_not_stored(
    cache: VerdictCache, generation: Generation
) -> None:
    before = cache.generation()
    generation.value += 1  # the config changed while the verdict was being computed
    assert not store(cache, USER_REFS, request(), generation=before)
    assert answer(cache, request()) is None
    assert store(cache, USER_REFS, request(), generation=cache.generation())
    assert answer(cache, request()) == b"verdict"
