"""What keeps full garbage collections short (mixerd/runtime/heap.py): a compiled config holds no reference
cycle, so a replaced one is freed by reference counting (also once frozen); and the heap policy itself,
run in a process of its own (it freezes the process's objects, which a test process must not do)."""

from __future__ import annotations

import asyncio
import gc
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mixerd.config import load_snapshot
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime

ROOT = Path(__file__).resolve().parents[3]
ADAPTERS = load_adapters()
HEADERS = """---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: headers}
spec:
  match: request.path.startsWith("/api")
  requestHeaderOperations: [{name: x-checked, values: ['"yes"']}]
"""


@contextmanager
def cyclic_garbage() -> Iterator[list[object]]:
    """The objects that only a collection (not reference counting) frees, made inside the block."""
    found: list[object] = []
    gc.collect()
    gc.disable()
    try:
        yield found
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        found.extend(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def _describe(objects: list[object]) -> list[str]:
    return sorted({getattr(o, "__qualname__", type(o).__name__) for o in objects})[:20]


@pytest.mark.parametrize("config", ["rules/istio", "bench/configs/policy15", "bench/configs/envoy"])
def test_compiling_a_config_and_dropping_it_leaves_no_cyclic_garbage(config: str, tmp_path: Path) -> None:
    folder = tmp_path / "config"
    shutil.copytree(ROOT / config, folder)
    (folder / "headers.yaml").write_text(HEADERS)
    load_snapshot(folder, ADAPTERS)  # first-use caches (imports, regexes) out of the way
    with cyclic_garbage() as garbage:
        snapshot = load_snapshot(folder, ADAPTERS)
        assert snapshot.rules
        del snapshot
    assert garbage == [], _describe(garbage)


def test_a_replaced_routing_table_is_freed_without_a_collection(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    shutil.copytree(ROOT / "bench/configs/policy15", folder)
    (folder / "ratelimit.yaml").write_text((ROOT / "bench/configs/envoy/ratelimit.yaml").read_text())

    async def main() -> list[object]:
        runtime = Runtime(ADAPTERS, folder=folder)
        await runtime.reload()
        await runtime.reload()
        with cyclic_garbage() as garbage:
            # Two more changes: the table in force before them is dropped (none of its requests run).
            await runtime.reload()
            await runtime.reload()
            assert runtime.generation == 4 and len(runtime._replaced) == 1
            for thread in threading.enumerate():  # the dropped tables are freed in a thread of their own
                if thread.name == "mixerd-free":
                    thread.join(10)
        await runtime.close()
        return garbage

    garbage = asyncio.run(main())
    assert [o for o in garbage if _ours(o)] == [], _describe(garbage)


def _ours(o: object) -> bool:
    """Garbage made by mixerd's code (asyncio's own per-await objects come and go meanwhile)."""
    code = getattr(o, "__code__", None)
    if code is not None:
        return "mixer" in code.co_filename or code.co_filename.startswith("<")
    return type(o).__module__.startswith(("mixerd", "adapters"))


def test_the_heap_policy_freezes_after_start_and_after_each_load(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import gc
        from mixerd.runtime import heap

        with heap.loading():  # not enabled: the collector is left alone
            assert gc.get_threshold() == (700, 10, 10)
        heap.settle_after_load()
        assert gc.get_freeze_count() == 0

        heap.settle_after_start()
        frozen = gc.get_freeze_count()
        assert frozen > 10000, frozen  # the libraries imported so far
        with heap.loading():
            with heap.loading():  # nested (two loads at once): one restore, at the end
                assert gc.get_threshold()[1:] == (2, 1 << 30)
            assert gc.get_threshold()[1:] == (2, 1 << 30)
            config = [[i] for i in range(1000)]  # what a load keeps
        assert gc.get_threshold() == (700, 10, 10)
        heap.settle_after_load()
        assert gc.get_freeze_count() >= frozen + 1000
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


#: A telemetry handler (stdio, a BatchQueue inside) and a Redis quota handler that cannot reach Redis
#: (a reconnecting task): both once kept a reference cycle through themselves after close.
_RETIRED = """
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {{name: log{n}, namespace: istio-system}}
spec: {{compiledAdapter: stdio, params: {{outputAsJson: true}}}}
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {{name: quota{n}, namespace: istio-system}}
spec:
  compiledAdapter: redisquota
  params:
    redisServerUrl: 127.0.0.1:1
    quotas: [{{name: q.instance.istio-system, maxAmount: 1, validDuration: 1s}}]
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {{name: line, namespace: istio-system}}
spec: {{compiledTemplate: logentry, params: {{severity: '"INFO"', variables: {{}}}}}}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {{name: q, namespace: istio-system}}
spec: {{compiledTemplate: quota}}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {{name: r, namespace: istio-system}}
spec: {{actions: [{{handler: log{n}, instances: [line]}}, {{handler: quota{n}, instances: [q]}}]}}
"""


def test_handlers_replaced_by_reloads_are_freed_from_a_frozen_heap(tmp_path: Path) -> None:
    """As `mixerd serve` runs (heap frozen after start and after each load), ten reloads that each replace
    the handlers leave none of the replaced ones alive: nothing of them is in a frozen cycle."""
    (tmp_path / "template.yaml.txt").write_text(_RETIRED)
    script = textwrap.dedent(
        f"""
        import asyncio, gc, logging, pathlib, weakref
        from mixerd.plugins import load_adapters
        from mixerd.runtime import Runtime, heap

        logging.disable(logging.WARNING)  # Redis is away on purpose
        folder = pathlib.Path({str(tmp_path)!r})
        template = (folder / "template.yaml.txt").read_text()

        async def main():
            (folder / "c.yaml").write_text(template.format(n=0))
            runtime = Runtime(load_adapters(), folder=folder)
            await runtime.apply(runtime.compile())
            heap.settle_after_start()
            replaced = []
            for n in range(1, 11):
                replaced += [weakref.ref(b.handler) for b in runtime.table.handlers.values()]
                (folder / "c.yaml").write_text(template.format(n=n))
                await runtime.apply(runtime.compile())
            await asyncio.sleep(0.5)  # the replaced handlers drain and close
            gc.collect()  # collects what is not frozen; a frozen cycle would stay
            alive = [r() for r in replaced if r() is not None]
            print(len(replaced), [type(h).__name__ for h in alive])
            await runtime.close()

        asyncio.run(main())
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "20 []", out.stdout + out.stderr
