"""Attribute generation: before Check and Report, run the attribute generators whose rules match and merge
their output under the request's own attributes (MIXER.md 6.3): what the proxy sent wins, generated
values fill gaps. A generator that fails fails the request (DispatchError)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from time import perf_counter
from typing import Any

from ..attribute import AttributeBag
from ..dispatch import DispatchError
from .calls import Calls
from .table import Routes
from .trace import GENERATE, Trace


class GenerationStep:
    def __init__(self, calls: Calls) -> None:
        self._calls = calls

    async def run(
        self, routes: Routes, bag: AttributeBag, timeout: float | None, trace: Trace | None = None
    ) -> None:
        """Run `routes`' generators on `bag`, one instance at a time, and merge what they produce."""
        calls = self._calls
        for dest in routes.generators:
            handler = dest.handler.fqn
            for group in dest.groups:
                if not calls.holds(group.match, group.rule, bag, GENERATE, trace, group.counted):
                    continue
                for builder in group.instances:
                    started = perf_counter()
                    try:
                        output = dest.method(builder.build(bag))
                        if dest.is_async:
                            output = await asyncio.wait_for(output, calls.deadline(timeout))
                        generated = _bind(builder.template.output_prefix, builder.bindings, output)
                    except Exception as e:
                        calls.stats.generator_failures += 1
                        calls.count(dest, "error", started)
                        if trace is not None:
                            trace.called(GENERATE, dest, group.rule, (builder.fqn,), error=str(e))
                        raise DispatchError(f"preprocessing attributes failed: {handler}: {e}") from e
                    calls.count(dest, "ok", started)
                    if trace is not None:
                        trace.called(GENERATE, dest, group.rule, (builder.fqn,), generated)
                    bag.merge_under(generated)


def _bind(prefix: str, bindings: Sequence[tuple[str, Any]], output: Any) -> dict[str, Any]:
    """Map a generator's output through the instance's attribute bindings."""
    if not isinstance(output, Mapping):
        raise TypeError(f"the generator returned {type(output).__name__}, not a mapping of output fields")
    out_bag = AttributeBag.wrap({prefix + k: v for k, v in output.items() if v is not None})
    return {attribute: expression.evaluate(out_bag) for attribute, expression in bindings}
