"""BatchQueue: telemetry delivered in batches in the background, retried, bounded, counted."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from mixerd.adapter import Env
from mixerd.batching import BatchQueue


def env() -> Env:
    return Env(handler="h.handler.istio-system", adapter="test", params=None, instances={})


def run(test: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(test(), 10))


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.005)


class Backend:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.down = False
        self.threads: set[int] = set()

    async def send(self, batch: list[int]) -> None:
        if self.down:
            raise ConnectionRefusedError("backend down")
        self.batches.append(list(batch))

    def send_blocking(self, batch: list[int]) -> None:
        self.threads.add(threading.get_ident())
        if self.down:
            raise ConnectionRefusedError("backend down")
        self.batches.append(list(batch))


def test_full_batches_go_at_once_and_the_rest_after_the_flush_interval() -> None:
    async def test() -> None:
        backend = Backend()
        e = env()
        q = BatchQueue(e, backend.send, batch_size=3, flush_interval=0.05)
        assert q.put_many(range(7)) == 7
        await until(lambda: sum(map(len, backend.batches)) == 7)
        assert backend.batches[:2] == [[0, 1, 2], [3, 4, 5]] and backend.batches[2:] == [[6]]
        assert (q.stats.queued, q.stats.sent, q.stats.dropped, q.stats.failed) == (7, 7, 0, 0)
        await q.close()
        await e.cancel_background()

    run(test)


def test_a_down_backend_is_retried_in_order_and_a_full_queue_drops_and_counts() -> None:
    async def test() -> None:
        backend = Backend()
        backend.down = True
        e = env()
        q = BatchQueue(
            e, backend.send, capacity=5, batch_size=2, flush_interval=0.01, retry_initial=0.01, retry_max=0.02
        )
        assert q.put_many(range(8)) == 5  # 5 fit, 3 are dropped
        assert (len(q), q.stats.dropped) == (5, 3)
        await until(lambda: q.stats.failed >= 3)  # retried, with back-off
        assert backend.batches == []
        backend.down = False
        await until(lambda: len(q) == 0)
        assert [x for batch in backend.batches for x in batch] == [0, 1, 2, 3, 4]
        assert q.stats.sent == 5
        await q.close()
        await e.cancel_background()

    run(test)


def test_a_blocking_send_runs_off_the_event_loop() -> None:
    async def test() -> None:
        backend = Backend()
        e = env()
        q = BatchQueue(e, backend.send_blocking, batch_size=1, flush_interval=0.01)
        q.put(1)
        await until(lambda: backend.batches == [[1]])
        assert threading.get_ident() not in backend.threads
        await q.close()
        await e.cancel_background()

    run(test)


def test_close_delivers_what_is_queued_even_after_background_work_was_cancelled() -> None:
    async def test() -> None:
        backend = Backend()
        e = env()
        q = BatchQueue(e, backend.send, batch_size=100, flush_interval=60)
        q.put_many([1, 2, 3])
        await e.cancel_background()  # what mixerd does before calling a handler's close()
        await q.close()
        assert backend.batches == [[1, 2, 3]] and q.stats.sent == 3
        assert q.put(4) is False and q.stats.dropped == 1  # closed: nothing more is taken

    run(test)


def test_close_with_the_backend_down_gives_up_in_time_and_counts_the_loss() -> None:
    async def test() -> None:
        backend = Backend()
        backend.down = True
        e = env()
        q = BatchQueue(e, backend.send, batch_size=10, flush_interval=0.01, retry_initial=0.01)
        q.put_many(range(4))
        loop = asyncio.get_running_loop()
        started = loop.time()
        await q.close(timeout=0.1)
        assert loop.time() - started < 1
        assert (q.stats.sent, q.stats.dropped, len(q)) == (0, 4, 0)
        await e.cancel_background()

    run(test)


def test_flush_waits_for_delivery() -> None:
    async def test() -> None:
        backend = Backend()
        e = env()
        q = BatchQueue(e, backend.send, batch_size=100, flush_interval=60)
        q.put_many([1, 2])
        assert await q.flush(timeout=1) is True
        assert backend.batches == [[1, 2]]
        await q.close()
        await e.cancel_background()

    run(test)


def test_an_outage_logs_a_few_lines_and_its_end(caplog: Any) -> None:
    async def test() -> None:
        backend = Backend()
        backend.down = True
        e = env()
        q = BatchQueue(
            e, backend.send, batch_size=1, flush_interval=0.01, retry_initial=0.001, retry_max=0.001
        )
        q.put(1)
        await until(lambda: q.stats.failed >= 120)
        backend.down = False
        await until(lambda: q.stats.sent == 1)
        await q.close()
        await e.cancel_background()

    caplog.set_level("INFO", logger="mixerd.adapter.test")
    run(test)
    lines = [r.getMessage() for r in caplog.records if r.name == "mixerd.adapter.test"]
    failed = [line for line in lines if "sending 1 items failed" in line]
    assert [line.split("(")[1].split(" attempts")[0] for line in failed] == ["1", "10", "100"]
    assert lines[-1].startswith("h.handler.istio-system: delivery resumed after ")


def test_the_delivery_state_has_the_depth_and_the_last_error() -> None:
    async def test() -> None:
        backend = Backend()
        backend.down = True
        e = env()
        q = BatchQueue(e, backend.send, capacity=5, batch_size=2, flush_interval=0.01, retry_initial=0.01)
        assert q.delivery_state() == {"depth": 0, "capacity": 5, "last_error": "", "last_error_at": 0}
        q.put_many(range(3))
        await until(lambda: q.stats.failed >= 1)
        state = q.delivery_state()
        assert (state["depth"], state["last_error"]) == (3, "ConnectionRefusedError: backend down")
        assert state["last_error_at"] > 0
        backend.down = False
        await until(lambda: len(q) == 0)
        assert q.delivery_state()["last_error"] == "ConnectionRefusedError: backend down"  # kept
        await q.close()
        await e.cancel_background()

    run(test)
