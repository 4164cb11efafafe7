"""Report: the instances of a Report's bags, buffered per destination (handler x template) across the
bags, and delivered in one call per destination (MIXER.md 9), also when the bags route through different
namespaces.

Report never waits on a backend (DESIGN.md decision 6): handlers queue what they get. A failed instance
or handler fails the Report (DispatchError, every error joined) once everything else was delivered; a
handler whose build failed is counted and left out, as Mixer did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from ..attribute import AttributeBag
from ..dispatch import DispatchError
from .calls import Calls, Pending
from .handlers import HandlerUnavailable
from .table import Destination, Routes
from .trace import REPORT, Trace


@dataclass(slots=True)
class ReportBatch:
    """What one Report delivers: instances by destination (in the order first reached), and the errors
    met on the way."""

    buffers: dict[tuple[str, str], tuple[Destination, list[Any]]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    #: With a trace: the FQNs of each destination's instances, in the order buffered.
    instances: dict[tuple[str, str], list[str]] = field(default_factory=dict)


class ReportStep:
    def __init__(self, calls: Calls) -> None:
        self._calls = calls

    def buffer(
        self, routes: Routes, bag: AttributeBag, batch: ReportBatch, trace: Trace | None = None
    ) -> None:
        """Build the instances of `routes`' report rules that match `bag` into `batch`."""
        calls = self._calls
        buffers = batch.buffers
        for dest in routes.report:
            for group in dest.groups:
                if not calls.holds(group.match, group.rule, bag, REPORT, trace, group.counted):
                    continue
                for builder in group.instances:
                    try:
                        instance = builder.build(bag)
                    except Exception as e:
                        calls.stats.instance_errors += 1
                        batch.errors.append(f"instance {builder.fqn}: {e}")
                        if trace is not None:
                            error = f"instance: {e}"
                            trace.called(REPORT, dest, group.rule, (builder.fqn,), None, error, False)
                        continue
                    key = (dest.handler.fqn, dest.template.name)
                    buffers.setdefault(key, (dest, []))[1].append(instance)
                    if trace is not None:
                        batch.instances.setdefault(key, []).append(builder.fqn)

    async def deliver(self, batch: ReportBatch, trace: Trace | None = None) -> None:
        """One call per destination; DispatchError with every error of the batch, when there were any."""
        calls = self._calls
        errors = batch.errors
        pending: list[Pending] = []
        for key, (dest, instances) in batch.buffers.items():
            fqns = tuple(batch.instances.get(key, ())) if trace is not None else ()
            started = perf_counter()
            try:
                answer = dest.method(instances)
            except HandlerUnavailable as e:
                # Its build failed (logged then): counted, but no reason to fail every Report for it;
                # the other handlers' instances were delivered (Mixer left such handlers out too).
                calls.count(dest, "unavailable")
                if trace is not None:
                    trace.called(REPORT, dest, "", fqns, error=str(e))
                continue
            except Exception as e:
                calls.count(dest, "error", started)
                errors.append(f"{dest.handler.fqn}: {type(e).__name__}: {e}")
                if trace is not None:
                    error = f"{type(e).__name__}: {e}"
                    trace.called(REPORT, dest, "", fqns, error=error)
                continue
            if dest.is_async:
                pending.append((dest, answer, "", fqns))
            else:
                calls.count(dest, "ok", started)
                if trace is not None:
                    trace.called(REPORT, dest, "", fqns, answer)
        if pending:
            await calls.gather(pending, calls.timeout, [], errors, REPORT, trace)
        if errors:
            raise DispatchError("; ".join(errors))
