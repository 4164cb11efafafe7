"""Blocking work (reading and compiling the config folder) in a thread the process never waits for.

`asyncio.to_thread` runs work on the loop's default executor, whose threads are joined when the loop
closes and again when the interpreter exits: one read stuck in the kernel (a FIFO, a hung network
filesystem) would then hold `mixerd serve` past SIGTERM forever. Here each call gets its own daemon
thread; an awaiting task that is cancelled simply stops waiting, and the thread, if it ever returns,
finds nobody to hand its result to.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


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
            result = func(*args)
        except BaseException as e:  # handed to the awaiting task, which decides
            error = e
        with contextlib.suppress(RuntimeError):  # the loop closed while the work ran: nobody waits
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=work, name=name, daemon=True).start()
    return await future
