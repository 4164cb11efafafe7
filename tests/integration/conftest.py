"""Fixtures that run a real mixerd server in-process, on free ports, and always stop it.

`mixer_server` is a started server with the no-rules dispatcher; `start_mixer_server(...)` starts more
(with other settings or a dispatcher of your own; without a dispatcher it runs the rule engine on
`config=` or the embedded default rules). Each server runs on its own event loop in a
background thread, so tests stay plain synchronous functions using grpc's sync client.

`upstream` (a recording HTTP server) and `start_envoy(upstream, ext_authz=..., ratelimit=...,
access_log=...)` run a real Envoy in front of it (tests/peers/envoy.py); every Envoy stops at teardown.

Handle contract (`MixerServer`): `.address` "127.0.0.1:PORT", `.port`, `.monitoring_url`
"http://127.0.0.1:PORT", `.monitoring_port`, `.admin_url` "http://127.0.0.1:PORT" (None with
admin_port=-1), `.stats` (the live counters) and `.running` (the mixerd.server.app.RunningServer).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from peers.certs import TestPki
from peers.envoy import EnvoyProxy, Upstream

from mixerd.dispatch import Dispatcher, NoRulesDispatcher
from mixerd.server.app import RunningServer, start
from mixerd.server.stats import Stats
from mixerd.settings import Settings
from mixerd.testing_scenarios.server import LoopThread

T = TypeVar("T")

#: What tests get unless they ask otherwise: loopback, free ports (the admin page's too), no waiting at
#: shutdown, and load shedding only past 10 s of queueing (its machinery runs, but a pause of the test
#: process, which every in-process server shares, never turns into UNAVAILABLE; test_shedding.py sets
#: its own).
TEST_SETTINGS = Settings(
    address="127.0.0.1", port=0, monitoring_port=0, admin_port=0, shutdown_grace=0.0, shed_latency=10.0
)


@dataclass
class MixerServer:
    """A running in-process mixerd (see the module docstring for the contract)."""

    running: RunningServer
    _loop: LoopThread

    @property
    def port(self) -> int:
        return self.running.port

    @property
    def address(self) -> str:
        return self.running.address

    @property
    def monitoring_port(self) -> int:
        return self.running.monitoring_port

    @property
    def monitoring_url(self) -> str:
        return self.running.monitoring_url

    @property
    def admin_url(self) -> str | None:
        return self.running.admin_url

    @property
    def stats(self) -> Stats:
        return self.running.stats

    def stop(self, grace: float | None = None) -> None:
        """Stop now (the fixture also stops it; stopping twice is fine)."""
        self._loop.run(self.running.stop(grace))


@contextmanager
def _serve(settings: Settings, dispatcher: Dispatcher | None) -> Iterator[MixerServer]:
    loop = LoopThread()
    try:
        server = MixerServer(loop.run(start(settings, dispatcher)), loop)
        try:
            yield server
        finally:
            server.stop(0)
    finally:
        loop.close()


@pytest.fixture
def mixer_server() -> Iterator[MixerServer]:
    """A mixerd with no rules on 127.0.0.1, free gRPC and monitoring ports."""
    with _serve(TEST_SETTINGS, NoRulesDispatcher()) as server:
        yield server


@pytest.fixture
def start_mixer_server() -> Iterator[Callable[..., MixerServer]]:
    """`start_mixer_server(dispatcher=None, **settings)` starts another server; all stop at teardown."""
    with ExitStack() as stack:

        def _start(dispatcher: Dispatcher | None = None, **overrides: Any) -> MixerServer:
            settings = dataclasses.replace(TEST_SETTINGS, **overrides)
            return stack.enter_context(_serve(settings, dispatcher))

        yield _start


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A started HTTP/1.1 server that records what it receives and answers 200 (tests/peers/envoy.py)."""
    with Upstream() as server:
        yield server


@pytest.fixture
def start_envoy(tmp_path: Path) -> Iterator[Callable[..., EnvoyProxy]]:
    """`start_envoy(upstream, **options)` starts a real Envoy (options of peers.envoy.EnvoyProxy: ext_authz,
    ratelimit, access_log, ...) and returns it once LIVE; all stop at teardown."""
    with ExitStack() as stack:

        def _start(upstream: str | Upstream, **options: Any) -> EnvoyProxy:
            return stack.enter_context(EnvoyProxy(tmp_path / "envoy", upstream, **options))

        yield _start


# -- TLS --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """A test CA with server and client certificates, and a client certificate of another CA
    (tests/peers/certs.py); made once per session, never changed (copy the files to rotate them)."""
    return TestPki(tmp_path_factory.mktemp("pki"))
