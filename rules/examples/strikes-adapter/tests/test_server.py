"""The strikes adapter inside a real mixerd: the config folder this package ships, real gRPC calls.

`mixerd_server` comes with mixerd's pytest plugin (turned on in pyproject.toml): it starts mixerd on
free ports with every adapter, ours included, and the clock we give it, and stops it after the test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc

from mixerd.api.mixer.v1 import mixer_pb2, mixer_pb2_grpc
from mixerd.attribute import GLOBAL_WORDS, encode_attributes, encode_report
from mixerd.testing_scenarios import ManualClock

CONFIG = Path(__file__).resolve().parents[1] / "config"
SECOND = 1_000_000_000
UNAUTHENTICATED = 16


def request(principal: str, code: int = 200) -> dict[str, Any]:
    return {"source.principal": principal, "response.code": code}


def check_request(principal: str) -> mixer_pb2.CheckRequest:
    return mixer_pb2.CheckRequest(
        attributes=encode_attributes(request(principal)), global_word_count=len(GLOBAL_WORDS)
    )


def test_two_401s_box_a_principal_for_a_minute(mixerd_server: Any) -> None:
    clock = ManualClock(1_000 * SECOND)
    server = mixerd_server(CONFIG, clock=clock)
    with grpc.insecure_channel(server.address) as channel:
        mixer = mixer_pb2_grpc.MixerStub(channel)
        bags = [request("bob", 401), request("bob", 200), request("alice", 401), request("bob", 401)]
        mixer.Report(encode_report(bags), timeout=10)

        bob = mixer.Check(check_request("bob"), timeout=10).precondition
        assert bob.status.code == UNAUTHENTICATED
        assert bob.status.message == "strikes.handler.istio-system:bob has 2 strikes in the last 1m0s"
        assert bob.valid_duration.seconds == 60
        alice = mixer.Check(check_request("alice"), timeout=10).precondition
        assert alice.status.code == 0  # exempt

        clock.advance(60 * SECOND)  # both strikes leave the window
        bob = mixer.Check(check_request("bob"), timeout=10).precondition
        assert bob.status.code == 0
