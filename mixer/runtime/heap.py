"""Keeping CPython's full garbage collections short, so a reload never holds Check for long.

A full (generation 2) collection holds the GIL while it walks every object the collector tracks: with
the libraries `mixerd serve` imports and a config of thousands of rules, 80-470 ms, and a reload
triggered one to three of them (it allocates a second config beside the first). What keeps them short:

- `settle_after_start()` (once, by `mixerd serve`, when it serves): one full collection, then
  `gc.freeze()`: everything alive then (grpc, protobuf and the other libraries, the first config) moves
  to the permanent generation, which collections never walk.
- `loading()` around each config load: no *full* collection starts while it is open (young ones still
  run, so garbage of calls answered meanwhile is still collected, and generation 1 more often, so each
  of them stays short); `settle_after_load()` once the new config is in force collects the young
  generations and freezes it too.
- A config is free of reference cycles (generated functions are taken out of their own globals, the
  YAML walk is no recursive closure; tests/unit/runtime/test_heap.py holds them to it), so a replaced
  config, frozen or not, is freed by reference counting once its last request is done: freezing leaks
  nothing of it.

Handlers are frozen with the config that built them, so a handler replaced by a reload must leave no
cycle through itself once closed (the lifecycle conformance check `closed_handler_leaves_no_cycle`
holds every adapter to it; BatchQueue and redisquota drop their tasks in close()).

Frozen objects are never collected, so a *cyclic* garbage object frozen by mistake stays: what freezing
after a load can catch is garbage of the load's own time that survived into the oldest generation;
`loading()` starts with a full collection for that reason, while only the previous config's survivors
are unfrozen and it is short. docs/PERFORMANCE.md, "Check during a reload", has the figures.

Without `settle_after_start()` (tests, embedding) every function here does nothing: the process's
collector is left as it is.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

#: A generation-2 threshold no count reaches: no full collection starts on its own.
_NEVER = 1 << 30
#: While loading, generation 1 is collected every this many generation-0 collections (Python's default
#: is 10): a load's objects mostly survive, so each generation-1 collection walks up to this many times
#: 700 of them; 2 keeps that under a couple of milliseconds.
_LOADING_THRESHOLD1 = 2

_lock = threading.Lock()
_enabled = False
_loading = 0
_saved: tuple[int, int, int] = (700, 10, 10)


def settle_after_start() -> None:
    """Collect once and freeze what is alive (call once the process serves); turns the rest on."""
    global _enabled
    gc.collect()
    gc.freeze()
    _enabled = True


@contextlib.contextmanager
def loading() -> Iterator[None]:
    """While open (in any thread, nesting allowed), no full collection starts by itself."""
    global _loading, _saved
    if not _enabled:
        yield
        return
    with _lock:
        if _loading == 0:
            gc.collect()  # only what is not frozen: short; cleans the oldest generation before a freeze
            _saved = gc.get_threshold()
            gc.set_threshold(_saved[0], min(_saved[1], _LOADING_THRESHOLD1), _NEVER)
        _loading += 1
    try:
        yield
    finally:
        with _lock:
            _loading -= 1
            if _loading == 0:
                gc.set_threshold(*_saved)


def settle_after_load() -> None:
    """Freeze the config just put in force (after a young collection)."""
    if not _enabled:
        return
    gc.collect(1)
    gc.freeze()


def enabled() -> bool:
    return _enabled
