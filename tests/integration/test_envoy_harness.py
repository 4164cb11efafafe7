"""The real-Envoy harness (tests/peers/envoy.py) does what the end-to-end tests rely on: requests go
through Envoy to the recording upstream, its access logger streams to the gRPC address it is given,
the filters it writes are accepted by Envoy, and a broken start says why."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from peers import receivers as peers
from peers.envoy import (
    AccessLog,
    EnvoyError,
    EnvoyProxy,
    ExtAuthz,
    RateLimit,
    Upstream,
    generic_key,
    remote_address,
    request_header,
    validate,
)

from mixerd.api.envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from mixerd.testing_scenarios.server import LoopThread

pytestmark = pytest.mark.integration


def test_a_request_through_envoy_reaches_the_upstream(
    upstream: Upstream, start_envoy: Callable[..., EnvoyProxy]
) -> None:
    envoy = start_envoy(upstream)

    answer = envoy.get("/books?id=7", headers={"x-user": "alice"})

    assert (answer.status, answer.body) == (200, upstream.body)
    [received] = upstream.received()
    assert (received.method, received.path) == ("GET", "/books?id=7")
    assert received.headers["x-user"] == "alice"
    assert "x-request-id" in received.headers  # Envoy's, so the request really went through it
    assert peers.wait_until(lambda: envoy.stat("http.ingress.downstream_rq_2xx") == 1, what="envoy's stats")
    assert envoy.stat("cluster.upstream.upstream_rq_200") == 1


class _AccessLogs(als_pb2_grpc.AccessLogServiceServicer):
    """Records the stream identifiers and HTTP entries Envoy sends."""

    def __init__(self) -> None:
        self.log_names: list[str] = []
        self.entries: list[Any] = []

    async def StreamAccessLogs(
        self, request_iterator: AsyncIterator[als_pb2.StreamAccessLogsMessage], context: Any
    ) -> als_pb2.StreamAccessLogsResponse:
        async for message in request_iterator:
            if message.HasField("identifier"):
                self.log_names.append(message.identifier.log_name)
            self.entries.extend(message.http_logs.log_entry)
        return als_pb2.StreamAccessLogsResponse()


@pytest.fixture
def access_log_server() -> Iterator[tuple[str, _AccessLogs]]:
    """A grpc.aio AccessLogService of the test's own on a free port: (address, servicer)."""
    loop = LoopThread()
    servicer = _AccessLogs()

    async def start() -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server()
        als_pb2_grpc.add_AccessLogServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    server, port = loop.run(start())
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        loop.run(server.stop(0))
        loop.close()


def test_envoys_access_logger_streams_to_the_address_it_is_given(
    upstream: Upstream, start_envoy: Callable[..., EnvoyProxy], access_log_server: tuple[str, _AccessLogs]
) -> None:
    address, servicer = access_log_server
    envoy = start_envoy(
        upstream, access_log=AccessLog(address, log_name="harness", request_headers=["x-user"])
    )

    assert envoy.get("/logged", headers={"x-user": "bob"}).status == 200

    [entry] = peers.wait_until(lambda: servicer.entries, what="an access log entry")
    assert servicer.log_names == ["harness"]
    assert entry.request.path == "/logged"
    assert entry.request.request_method == 1  # GET (envoy.config.core.v3.RequestMethod)
    assert entry.request.request_headers == {"x-user": "bob"}
    assert entry.response.response_code.value == 200
    assert entry.common_properties.upstream_cluster == "upstream"


def test_envoy_accepts_the_bootstrap_with_all_three_filters(tmp_path: Path) -> None:
    """Nothing listens at the mixerd address: validation only checks the config."""
    proxy = EnvoyProxy(
        tmp_path,
        "127.0.0.1:1",
        ext_authz=ExtAuthz("127.0.0.1:2", status_on_error=503),
        ratelimit=RateLimit(
            "127.0.0.1:2",
            "edge",
            [[generic_key("api"), request_header("x-user", "user")], [remote_address()]],
        ),
        access_log=AccessLog("localhost:2", request_headers=["x-user"], cluster="als"),
    )
    result = validate(proxy.write_bootstrap())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


def test_an_envoy_that_exits_early_shows_its_log(tmp_path: Path) -> None:
    proxy = EnvoyProxy(tmp_path, "127.0.0.1:1", ext_authz=ExtAuthz("127.0.0.1:2", extra={"no_such_field": 1}))
    with pytest.raises(EnvoyError, match=r"(?s)envoy exited with status 1\n.*no_such_field"):
        proxy.start()
    assert not proxy.running


def test_stop_is_idempotent_and_ends_the_process(upstream: Upstream, tmp_path: Path) -> None:
    proxy = EnvoyProxy(tmp_path, upstream).start()
    assert proxy.running
    proxy.stop()
    proxy.stop()
    assert not proxy.running


def test_one_cluster_name_for_two_addresses_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=re.escape("cluster 'mixerd' given two addresses: 127.0.0.1:2 and 127.0.0.1:3")
    ):
        EnvoyProxy(
            tmp_path, "127.0.0.1:1", ext_authz=ExtAuthz("127.0.0.1:2"), access_log=AccessLog("127.0.0.1:3")
        )


def test_reset_counters_zeroes_envoys_counts(
    upstream: Upstream, start_envoy: Callable[..., EnvoyProxy]
) -> None:
    envoy = start_envoy(upstream)
    envoy.get("/")
    peers.wait_until(lambda: envoy.stat("http.ingress.downstream_rq_2xx") == 1, what="the request's count")
    envoy.reset_counters()
    assert envoy.stat("http.ingress.downstream_rq_2xx") == 0
