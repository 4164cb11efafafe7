"""`python bench/_instrumented_serve.py LOG serve ...`: mixerd's CLI, with what stalls its event loop
written to LOG, one line each, so a benchmark can tell the server's own pauses from the machine's and
the client's:

    <unix time> gc <generation> <ms>     a garbage collection that took over 1 ms (any thread)
    <unix time> lag <ms>                 the event loop was late by over 5 ms (a 1 ms heartbeat)

Times are when the pause ended. Used by bench/reload_stall.py.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from collections.abc import Callable
from typing import IO, Any

from mixerd.cli import main as mixerd_main


def _collections(log: IO[str]) -> Callable[[str, dict[str, Any]], None]:
    started = [0.0]

    def on_collection(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        took = time.perf_counter() - started[0]
        if took > 0.001:
            log.write(f"{time.time():.4f} gc {info['generation']} {took * 1e3:.2f}\n")

    return on_collection


def _with_heartbeat(log: IO[str], run: Callable[..., Any]) -> Callable[..., Any]:
    async def heartbeat() -> None:
        while True:
            then = time.perf_counter()
            await asyncio.sleep(0.001)
            late = time.perf_counter() - then - 0.001
            if late > 0.005:
                log.write(f"{time.time():.4f} lag {late * 1e3:.2f}\n")

    def patched(coro: Any, **kwargs: Any) -> Any:
        async def both() -> Any:
            beat = asyncio.ensure_future(heartbeat())
            try:
                return await coro
            finally:
                beat.cancel()

        return run(both(), **kwargs)

    return patched


def main() -> int:
    with open(sys.argv[1], "w", buffering=1) as log:
        on_collection = _collections(log)
        gc.callbacks.append(on_collection)
        asyncio.run = _with_heartbeat(log, asyncio.run)  # mixerd serve's loop gets the heartbeat
        try:
            return mixerd_main(sys.argv[2:])
        finally:
            gc.callbacks.remove(on_collection)


if __name__ == "__main__":
    sys.exit(main())
