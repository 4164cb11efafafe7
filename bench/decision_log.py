"""What decision logs cost: CPU per Mixer Check and per ext_authz Check of the handlers themselves (no gRPC),
through the 5-rule benchmark policy, with the decision log off (the baseline: no trace is built), and on
to a file with every decision sampled; and the writer thread's CPU per record.

CPU time of the event loop's thread (time.thread_time), not wall time: on a shared machine the wall
clock measures the neighbours. Rounds alternate the two; the minimum of the rounds is printed.

Usage: python bench/decision_log.py [--calls N] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

from authz import CONFIGS, DISTINCT_REQUESTS, envoy_request

from mixerd.api.mixer.v1 import mixer_pb2
from mixerd.attribute import encode_attributes
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime, RuntimeDispatcher
from mixerd.server.decisions import DecisionLog, DecisionWriter
from mixerd.server.decisions.render import Redaction, json_line
from mixerd.server.decisions.writer import file_sink
from mixerd.server.envoy.authz import AuthorizationService
from mixerd.server.envoy.authz_metrics import AuthzStats
from mixerd.server.mixer_api import MixerApi
from mixerd.server.stats import Stats
from mixerd.testing import typical_http_bag


class _Context:
    def time_remaining(self) -> float:
        return 1.0


Handler = Callable[[bytes, Any], Awaitable[bytes]]


async def _cpu_per_call(handler: Handler, bodies: list[bytes], calls: int) -> float:
    context = _Context()
    start = time.thread_time()
    for i in range(calls):
        await handler(bodies[i % len(bodies)], context)
    return (time.thread_time() - start) / calls * 1e6


async def measure(calls: int, rounds: int, folder: Path) -> None:
    runtime = Runtime(load_adapters(), folder=CONFIGS / "policy5")
    await runtime.apply(runtime.compile())
    dispatcher = RuntimeDispatcher(runtime, runtime.stats)
    redaction = Redaction.parse("authorization,cookie")
    sink = file_sink(str(folder / "decisions.log"), 1 << 30, 0)
    writer = DecisionWriter(sink, partial(json_line, redaction=redaction))
    writer.start()
    on = DecisionLog(writer, 1.0, redaction)
    mixer_body = mixer_pb2.CheckRequest(
        attributes=encode_attributes(typical_http_bag()), global_word_count=222
    ).SerializeToString()
    apis: dict[str, tuple[Handler, Handler, list[bytes]]] = {
        "mixer_check": (
            MixerApi(dispatcher, Stats()).check,
            MixerApi(dispatcher, Stats(), decisions=on).check,
            [mixer_body],
        ),
        "ext_authz": (
            AuthorizationService(dispatcher, None, AuthzStats()).check,
            AuthorizationService(dispatcher, None, AuthzStats(), on).check,
            [envoy_request(n) for n in range(DISTINCT_REQUESTS)],
        ),
    }
    print(f"CPU of the event loop's thread per call, us (min of {rounds} rounds of {calls} calls)")
    for name, (off_handler, on_handler, bodies) in apis.items():
        off, logged = [], []
        for _ in range(rounds):
            off.append(await _cpu_per_call(off_handler, bodies, calls))
            logged.append(await _cpu_per_call(on_handler, bodies, calls))
            await asyncio.sleep(0.5)  # let the writer catch up between rounds
        ratio = min(logged) / min(off)
        print(f"  {name:12s} off {min(off):6.1f}   on {min(logged):6.1f}   on/off {ratio:.2f}x")
    await writer.aclose()
    print(f"records written {writer.written}, dropped {writer.dropped}")
    await runtime.close()

    # The writer thread's own cost: format and write the same records again, timed on this thread.
    probe: list[Any] = []
    keep = DecisionLog(None, 1.0, redaction)
    keep.writer = type("Keep", (), {"offer": staticmethod(probe.append)})()  # type: ignore[assignment]
    runtime = Runtime(load_adapters(), folder=CONFIGS / "policy5")
    await runtime.apply(runtime.compile())
    dispatcher = RuntimeDispatcher(runtime, runtime.stats)
    await _cpu_per_call(MixerApi(dispatcher, Stats(), decisions=keep).check, [mixer_body], 2000)
    start = time.thread_time()
    for decision in probe:
        json_line(decision, redaction)
    per_record = (time.thread_time() - start) / len(probe) * 1e6
    print(f"writer: formatting one mixer_check record {per_record:.1f} us")
    await runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(measure(args.calls, args.rounds, Path(folder)))


if __name__ == "__main__":
    main()
