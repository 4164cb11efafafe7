"""Built handlers: an adapter's handler object with its Env, its per-template methods, and its close.

A handler whose build fails is kept as an *unavailable* handler: the config was valid, the backend or
the adapter was not (DESIGN.md decision 5). Every call to it fails with a clear error, which each
variety turns into its usual failure (Check INTERNAL, quota granted 0, report counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable
from typing import Any

from ..adapter import CLOSE, HANDLE_RATE_LIMITS, Clock, Env
from ..config.snapshot import HandlerConfig
from ..settings import Settings
from ..templates import handler_method

_log = logging.getLogger(__name__)


class HandlerUnavailable(Exception):
    pass


class BuiltHandler:
    """One live handler. `method(template)` gives the callable and whether it must be awaited."""

    def __init__(self, config: HandlerConfig, handler: Any, env: Env, failure: str = "") -> None:
        self.config = config
        self.fqn = config.fqn
        self.handler = handler
        self.env = env
        self.failure = failure  # why the build failed; "" when it did not
        self.closed = False

    @property
    def available(self) -> bool:
        return not self.failure

    def method(self, template: str) -> tuple[Callable[..., Any], bool]:
        if self.failure:
            reason = f"handler is unavailable: {self.failure}"

            def unavailable(*args: Any) -> Any:
                raise HandlerUnavailable(reason)

            return unavailable, False
        method = handler_method(template)
        fn = getattr(self.handler, method, None)
        if fn is None:
            name = type(self.handler).__name__
            raise TypeError(f"adapter {self.config.adapter.name}: handler {name} has no {method} method")
        return fn, inspect.iscoroutinefunction(fn)

    def batch_method(self, name: str) -> tuple[Callable[..., Any], bool] | None:
        """An optional batch method (e.g. `handle_quotas`) and whether to await it; None when the handler
        has none or is unavailable."""
        fn = getattr(self.handler, name, None) if not self.failure else None
        return (fn, inspect.iscoroutinefunction(fn)) if callable(fn) else None

    async def close(self) -> None:
        """Close the handler once; failures are logged (closing must never take the server down)."""
        if self.closed:
            return
        self.closed = True
        await self.env.cancel_background()
        close = getattr(self.handler, CLOSE, None)
        if close is None:
            return
        try:
            result = close()
            if inspect.isawaitable(result):
                await result
        except Exception:
            _log.exception("closing handler %s failed", self.fqn)
            raise


async def build_handler(
    config: HandlerConfig, clock: Clock, settings: Settings | None = None, *, retry: bool = False
) -> BuiltHandler:
    """Build `config`'s handler; a failing build gives an unavailable handler (logged), not an error.

    `retry`: a handler that failed before is tried again; a failure then is one warning line (its
    traceback was logged the first time)."""
    adapter = config.adapter
    env = Env(
        handler=config.fqn,
        adapter=adapter.name,
        params=config.params,
        instances=config.instances,
        logger=logging.getLogger(f"mixerd.adapter.{adapter.name}"),
        clock=clock,
        settings=settings,
    )
    try:
        handler = adapter.build(env)
        if inspect.isawaitable(handler):
            handler = await handler
    except asyncio.CancelledError:
        raise
    except Exception as e:
        if retry:
            _log.warning("handler %s (adapter %s) is still unavailable: %s", config.fqn, adapter.name, e)
        else:
            _log.error(
                "building handler %s (adapter %s) failed: %s", config.fqn, adapter.name, e, exc_info=True
            )
        await env.cancel_background()
        return BuiltHandler(config, None, env, failure=f"build failed: {type(e).__name__}: {e}")
    missing = [
        handler_method(t)
        for t in sorted(
            {i.template for i in config.instances.values()}
            - {t for t in adapter.templates if callable(getattr(handler, handler_method(t), None))}
        )
    ]
    if config.rate_limits and not callable(getattr(handler, HANDLE_RATE_LIMITS, None)):
        missing.append(HANDLE_RATE_LIMITS)
    if missing:  # an adapter bug: the handler cannot take what rules send it, so it is unavailable
        reason = f"{type(handler).__name__} has no method " + ", ".join(missing)
        _log.error("handler %s (adapter %s): %s", config.fqn, adapter.name, reason)
        with contextlib.suppress(Exception):  # release what the build took (a failure is logged)
            await BuiltHandler(config, handler, env).close()
        return BuiltHandler(config, None, env, failure=f"build failed: {reason}")
    return BuiltHandler(config, handler, env)
