"""Blocking work (reading and compiling the config folder) in a thread the process never waits for.

`asyncio.to_thread` runs work on the loop's default executor, whose threads are joined when the loop
closes and again when the interpreter exits: one read stuck in the kernel (a FIFO, a hung network
filesystem) would then hold `mixerd serve` past SIGTERM forever. Here each call gets its own daemon
thread; an awaiting task that is cancelled simply stops waiting, and the thread, if it ever returns,
finds nobody to hand its result to.

While such work runs, the interpreter's switch interval is `SWITCH_INTERVAL` instead of the default
5 ms. Compiling is pure Python that holds the GIL, and each time the event loop thread wakes (a Check
arriving, an answer to send) it waits for the GIL until the compiling thread is made to drop it: up to
one switch interval per wake-up, several per Check. bench/reload_stall.py measured what that costs
(docs/PERFORMANCE.md, "Check during a reload").
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

#: Seconds a thread may hold the GIL while another waits for it, while detached work runs.
SWITCH_INTERVAL = 0.001


async def run_detached(func: Callable[..., T], *args: Any, name: str = "mixerd-loader") -> T:
    """`func(*args)` in a new daemon thread; its result or exception, as `asyncio.to_thread` gives."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():  # the awaiting task was cancelled meanwhile
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        result, error = None, None
        try:
            with _short_switches():
                result = func(*args)
        except BaseException as e:  # handed to the awaiting task, which decides
            error = e
        with contextlib.suppress(RuntimeError):  # the loop closed while the work ran: nobody waits
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=work, name=name, daemon=True).start()
    return await future


def start_detached(func: Callable[..., object], *args: Any, name: str = "mixerd-loader") -> None:
    """`func(*args)` in a new daemon thread, with the short switch interval, nobody waiting for it; an
    exception is logged by the thread."""

    def work() -> None:
        with _short_switches():
            func(*args)

    threading.Thread(target=work, name=name, daemon=True).start()


_lock = threading.Lock()
_running = 0
_saved = 0.0


@contextlib.contextmanager
def _short_switches() -> Iterator[None]:
    """SWITCH_INTERVAL while at least one detached call runs; the previous interval after the last.
    (A call stuck for good keeps it short: that costs only a little more switching between threads.)"""
    global _running, _saved
    with _lock:
        if _running == 0:
            _saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_saved, SWITCH_INTERVAL))
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0:
                sys.setswitchinterval(_saved)
