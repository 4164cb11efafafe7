"""run_detached: blocking work in a daemon thread whose result the awaiting task gets, and which neither a
cancelled task nor the loop's shutdown waits for (a config read stuck in the kernel must not hold exit)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading

import pytest

from mixerd.runtime.offload import SWITCH_INTERVAL, run_detached

# A hang here is the bug under test: fail in seconds instead of the suite's two minutes.
pytestmark = pytest.mark.timeout(20)


def test_the_result_and_the_exception_reach_the_awaiting_task() -> None:
    def fail() -> None:
        raise ValueError("bad config")

    async def main() -> tuple[int, str]:
        result = await run_detached(sum, [1, 2, 3])
        with pytest.raises(ValueError) as info:
            await run_detached(fail)
        return result, str(info.value)

    assert asyncio.run(main()) == (6, "bad config")


def test_the_work_runs_in_a_daemon_thread() -> None:
    async def main() -> tuple[bool, bool]:
        thread = await run_detached(threading.current_thread)
        return thread.daemon, thread is threading.main_thread()

    assert asyncio.run(main()) == (True, False)


def test_the_switch_interval_is_short_while_detached_work_runs_and_restored_after() -> None:
    # so the event loop thread never waits long for the GIL a compiling thread holds
    before = sys.getswitchinterval()

    async def main() -> list[float]:
        return list(await asyncio.gather(*(run_detached(sys.getswitchinterval) for _ in range(3))))

    assert asyncio.run(main()) == [SWITCH_INTERVAL] * 3
    assert sys.getswitchinterval() == before


def test_a_stuck_call_holds_neither_its_cancelled_task_nor_the_loop_s_shutdown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()
    finished = threading.Event()
    late_errors: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: late_errors.append(args.exc_value))

    def stuck() -> str:
        release.wait()
        finished.set()
        return "too late"

    async def main() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run_detached(stuck), 0.05)

    # With asyncio.to_thread this would never return: asyncio.run joins the default executor's threads.
    asyncio.run(main())
    release.set()  # the thread now finishes with its loop closed, and must not complain
    assert finished.wait(10)
    for thread in threading.enumerate():
        if thread.name == "mixerd-loader":
            thread.join(10)
    assert late_errors == []
