"""Handlers whose build failed are built again: the config in force gets them as soon as they build, with
no config change, and until then the retries back off."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mixerd.adapter import AdapterInfo, CheckResult, Env
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime

CONFIG = """
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: flaky}
spec: {compiledAdapter: flaky}
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: steady}
spec: {compiledAdapter: flaky}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: nothing}
spec: {compiledTemplate: checknothing}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: both}
spec:
  actions: [{handler: flaky, instances: [nothing]}, {handler: steady, instances: [nothing]}]
"""


@dataclass
class _Params:
    pass


class _Handler:
    def handle_checknothing(self, instance: Any) -> CheckResult:
        return CheckResult()


class Flaky:
    """An adapter whose `flaky.handler.*` fails its first `failures` builds; `steady` always builds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.builds: list[str] = []

    def build(self, env: Env) -> _Handler:
        self.builds.append(env.handler)
        if env.handler.startswith("flaky.") and self.failures > 0:
            self.failures -= 1
            raise OSError("backend down")
        return _Handler()

    def info(self) -> AdapterInfo:
        return AdapterInfo(name="flaky", templates=("checknothing",), params=_Params, build=self.build)


async def _runtime(tmp_path: Path, adapter: Flaky) -> Runtime:
    (tmp_path / "config.yaml").write_text(CONFIG)
    runtime = Runtime({**load_adapters(), "flaky": adapter.info()}, folder=tmp_path)
    await runtime.apply(runtime.compile())
    return runtime


def _available(runtime: Runtime) -> dict[str, bool]:
    return {fqn: h.available for fqn, h in runtime.table.handlers.items()}


def test_a_handler_that_builds_on_retry_goes_into_service(tmp_path: Path) -> None:
    async def scenario() -> None:
        adapter = Flaky(failures=2)
        runtime = await _runtime(tmp_path, adapter)
        flaky, steady = "flaky.handler.istio-system", "steady.handler.istio-system"
        assert _available(runtime) == {flaky: False, steady: True}
        first = runtime.table
        steady_handler = first.handlers[steady]

        assert await runtime.retry_unavailable() == 1  # failed again: nothing changes
        assert runtime.table is first and runtime.generation == 1

        assert await runtime.retry_unavailable() == 0  # built: a new table with it
        assert _available(runtime) == {flaky: True, steady: True}
        assert runtime.generation == 2
        assert runtime.table.handlers[steady] is steady_handler  # the others are kept as they are
        assert runtime.stats.config_loads == 1  # not a reload
        assert (runtime.stats.handler_builds, runtime.stats.handler_build_failures) == (4, 2)
        assert adapter.builds == [flaky, steady, flaky, flaky]

        assert await runtime.retry_unavailable() == 0  # nothing left to retry: no build at all
        assert len(adapter.builds) == 4
        await runtime.close()

    asyncio.run(scenario())


def test_retries_back_off_while_failing_and_start_over_with_a_new_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        adapter = Flaky(failures=1000)
        runtime = await _runtime(tmp_path, adapter)
        slept: list[float] = []
        real_sleep = asyncio.sleep

        async def recording_sleep(delay: float) -> None:
            slept.append(delay)
            if len(slept) == 4:  # a new config arrives while waiting
                await runtime.apply(runtime.compile())
            await real_sleep(0)

        monkeypatch.setattr(asyncio, "sleep", recording_sleep)  # the waits are recorded, not waited
        retrying = asyncio.ensure_future(runtime.keep_retrying(first=1.0, longest=4.0))
        while len(slept) < 7:
            await real_sleep(0)
        retrying.cancel()
        with pytest.raises(asyncio.CancelledError):
            await retrying
        monkeypatch.undo()
        assert slept[:7] == [1.0, 2.0, 4.0, 4.0, 1.0, 2.0, 4.0]
        await runtime.close()

    asyncio.run(scenario())
