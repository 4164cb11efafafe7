"""What a handler is told when it is built: its instances (`InstanceInfo`) and its `Env`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..settings import Settings


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    """What a handler is told, at build time, about one instance that rules send it.

    `types` maps each field to the ValueType its expression has (a map field maps to a dict of key ->
    ValueType, a nested message to a dict of its fields); adapters use it, for instance, to print an
    IP_ADDRESS value (raw bytes) as text.
    """

    name: str  # the instance's FQN, e.g. requestcount.instance.istio-system
    template: str
    types: Mapping[str, Any] = field(default_factory=dict)


Clock = Callable[[], int]  # nanoseconds since the Unix epoch


class Env:
    """A handler's view of the server: its identity, params, logger, clock, settings and background work.

    Background tasks started with `spawn` or `every` are cancelled when the handler is closed, so a
    handler never has to track them itself. Both need the running event loop, which `build` has.
    """

    def __init__(
        self,
        *,
        handler: str,
        adapter: str,
        params: Any,
        instances: Mapping[str, InstanceInfo],
        logger: logging.Logger | None = None,
        clock: Clock = time.time_ns,
        settings: Settings | None = None,
    ) -> None:
        self.handler = handler
        self.adapter = adapter
        self.params = params
        self.instances = instances
        self.logger = logger or logging.getLogger(f"mixerd.adapter.{adapter}")
        self.clock = clock
        # The server's settings (an Env made outside a server gets the defaults).
        self.settings = settings if settings is not None else Settings()
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Callable[[], Awaitable[Any]], *, name: str = "") -> asyncio.Task[Any]:
        """Run the coroutine `work()` in the background until it ends or the handler is closed.

        A failure is logged, not raised anywhere.
        """
        task = asyncio.get_running_loop().create_task(work(), name=name or f"{self.handler} background")
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def every(self, interval_s: float, work: Callable[[], Any], *, name: str = "") -> asyncio.Task[Any]:
        """Call `work()` (sync or async) every `interval_s` seconds; a failing call is logged and the
        schedule goes on. The first call is one interval after this one."""
        if not interval_s > 0:
            raise ValueError(f"{self.handler}: every() needs a positive interval, got {interval_s!r}")

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval_s)
                try:
                    result = work()
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:
                    self.logger.exception("%s: periodic work failed", self.handler)

        return self.spawn(loop, name=name or f"{self.handler} every {interval_s}s")

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.logger.error("%s: background task failed", self.handler, exc_info=task.exception())

    async def cancel_background(self) -> None:
        """Cancel every background task (the runtime calls this when the handler is closed)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
