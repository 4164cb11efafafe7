"""A rule engine in one process, for the runtime's unit tests: a config written from Python dicts, a
Runtime with an injected clock (ManualClock), its RuntimeDispatcher, and the spy adapter
(mixerd.testing_scenarios.spy) recording every call. No server, no network: each test runs in one
`asyncio.run`.

    run(tmp_path, [handler("a"), instance("i", "checknothing"), rule("r", [("a", ["i"])])], scenario)

where `async def scenario(rig: Rig)` checks and reports through `rig`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mixerd.adapter import AdapterInfo
from mixerd.attribute import AttributeBag
from mixerd.dispatch import CheckOutcome, QuotaRequest
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime, RuntimeDispatcher, Trace
from mixerd.runtime.handlers import BuiltHandler
from mixerd.testing_scenarios import ManualClock, SpyRecorder, spy_adapter

NS = "istio-system"  # the default namespace
START = 1_700_000_000 * 1_000_000_000  # the clock's first reading (ns)


def _doc(kind: str, name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "config.istio.io/v1alpha2",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def handler(name: str, adapter: str = "spy", namespace: str = NS, **params: Any) -> dict[str, Any]:
    """A handler; `params` as the adapter reads them (the spy's: checkStatus, quotaGrant, fail, ...)."""
    spec: dict[str, Any] = {"compiledAdapter": adapter}
    if params:
        spec["params"] = params
    return _doc("handler", name, namespace, spec)


def instance(name: str, template: str, namespace: str = NS, **params: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"compiledTemplate": template}
    if params:
        spec["params"] = params
    return _doc("instance", name, namespace, spec)


def rule(
    name: str,
    actions: Sequence[tuple[str, Sequence[str]]] = (),
    match: str | None = None,
    namespace: str = NS,
    **more: Any,
) -> dict[str, Any]:
    """A rule sending instances to handlers (`[(handler, [instance, ...]), ...]`); `more`: other spec
    fields, such as requestHeaderOperations."""
    spec: dict[str, Any] = {**more}
    if actions:
        spec["actions"] = [{"handler": h, "instances": list(i)} for h, i in actions]
    if match is not None:
        spec["match"] = match
    return _doc("rule", name, namespace, spec)


def fqn(name: str, kind: str, namespace: str = NS) -> str:
    return f"{name}.{kind}.{namespace}"


@dataclass
class Rig:
    folder: Path
    runtime: Runtime
    dispatcher: RuntimeDispatcher
    recorder: SpyRecorder
    clock: ManualClock

    async def load(self, docs: Sequence[Mapping[str, Any]]) -> None:
        """Put `docs` in force as the whole config."""
        write(self.folder, docs)
        await self.runtime.apply(self.runtime.compile())

    async def check(
        self,
        attributes: Mapping[str, Any] | None = None,
        quotas: Mapping[str, QuotaRequest] | None = None,
        dedup_id: str = "",
        *,
        trace: Trace | None = None,
        charge: bool = True,
        timeout: float | None = None,
    ) -> tuple[CheckOutcome, AttributeBag]:
        bag = AttributeBag(dict(attributes or {}))
        outcome = await self.dispatcher.check(
            bag, quotas or {}, dedup_id, timeout, trace=trace, charge=charge
        )
        return outcome, bag

    async def report(self, *bags: Mapping[str, Any], trace: Trace | None = None) -> None:
        await self.dispatcher.report([AttributeBag(dict(b)) for b in bags], trace=trace)

    def handler(self, name: str, namespace: str = NS) -> BuiltHandler:
        return self.runtime.table.handlers[fqn(name, "handler", namespace)]


def write(folder: Path, docs: Sequence[Mapping[str, Any]]) -> None:
    (folder / "config.yaml").write_text(yaml.safe_dump_all(list(docs), sort_keys=False))


async def start(
    folder: Path,
    docs: Sequence[Mapping[str, Any]],
    adapters: Mapping[str, AdapterInfo] | None = None,
    drain_timeout: float = 10.0,
) -> Rig:
    recorder = SpyRecorder()
    clock = ManualClock(START)
    known = {**load_adapters(), "spy": spy_adapter(recorder), **(adapters or {})}
    runtime = Runtime(known, folder=folder, clock=clock, drain_timeout=drain_timeout)
    rig = Rig(folder, runtime, RuntimeDispatcher(runtime, runtime.stats), recorder, clock)
    await rig.load(docs)
    return rig


def run(
    folder: Path,
    docs: Sequence[Mapping[str, Any]],
    scenario: Callable[[Rig], Awaitable[None]],
    adapters: Mapping[str, AdapterInfo] | None = None,
    drain_timeout: float = 10.0,
) -> None:
    """Start a rig with `docs` in force, run `scenario` on it, close the runtime."""

    async def go() -> None:
        rig = await start(folder, docs, adapters, drain_timeout)
        try:
            await scenario(rig)
        finally:
            await rig.runtime.close()

    asyncio.run(go())
