"""The strikes adapter inside a real mixerd: the config folder this package ships, real gRPC calls.

The runtime is given the adapters explicitly (the built-ins plus ours) and a clock of our own, so the
test needs no installed package and decides what time it is.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
from mixerd_example_adapter import mixerd_adapter_info

from mixerd.api.mixer.v1 import mixer_pb2, mixer_pb2_grpc
from mixerd.attribute import GLOBAL_WORDS, encode_attributes, encode_report
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime, RuntimeDispatcher
from mixerd.server.app import start
from mixerd.settings import Settings

CONFIG = Path(__file__).resolve().parents[1] / "config"
SETTINGS = Settings(address="127.0.0.1", port=0, monitoring_port=0, admin_port=-1, shutdown_grace=0.0)
SECOND = 1_000_000_000
UNAUTHENTICATED = 16


def request(principal: str, code: int = 200) -> dict[str, Any]:
    return {"source.principal": principal, "response.code": code}


def check_request(principal: str) -> mixer_pb2.CheckRequest:
    return mixer_pb2.CheckRequest(
        attributes=encode_attributes(request(principal)), global_word_count=len(GLOBAL_WORDS)
    )


def test_two_401s_box_a_principal_for_a_minute() -> None:
    now = [1_000 * SECOND]

    async def scenario() -> None:
        adapters = {**load_adapters(), "strikes": mixerd_adapter_info()}
        runtime = Runtime(adapters, folder=CONFIG, clock=lambda: now[0])
        await runtime.apply(runtime.compile())
        server = await start(SETTINGS, RuntimeDispatcher(runtime, runtime.stats))
        try:
            async with grpc.aio.insecure_channel(server.address) as channel:
                mixer = mixer_pb2_grpc.MixerStub(channel)
                bags = [request("bob", 401), request("bob", 200), request("alice", 401), request("bob", 401)]
                await mixer.Report(encode_report(bags), timeout=10)

                bob = (await mixer.Check(check_request("bob"), timeout=10)).precondition
                assert bob.status.code == UNAUTHENTICATED
                assert bob.status.message == "strikes.handler.istio-system:bob has 2 strikes in the last 1m0s"
                assert bob.valid_duration.seconds == 60
                alice = (await mixer.Check(check_request("alice"), timeout=10)).precondition
                assert alice.status.code == 0  # exempt

                now[0] += 60 * SECOND  # both strikes leave the window
                bob = (await mixer.Check(check_request("bob"), timeout=10)).precondition
                assert bob.status.code == 0
        finally:
            await server.stop(0)
            await runtime.close()

    asyncio.run(scenario())
