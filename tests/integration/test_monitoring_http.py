"""The monitoring port only serves: GET and HEAD, a deadline on request headers, bounded threads and
connections (mixerd.http_server), over real sockets, in-process so threads can be counted."""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from mixerd.api.mixer.v1 import mixer_pb2, mixer_pb2_grpc
from mixerd.http_server import WORKERS, BackgroundHttpServer
from mixerd.server import monitoring
from mixerd.server.monitoring import MonitoringApp

pytestmark = pytest.mark.integration


def request(port: int, method: str, path: str, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """One request; status, headers (lower-cased names) and body, as http.client reads them."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path)
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


def raw(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send `data` and read until the server closes: the exact bytes of its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def closed_after(sock: socket.socket, limit: float) -> float:
    """Seconds until the server closes `sock` (reads b"" or is reset), at most `limit`."""
    start = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(1024):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - start


@contextmanager
def serving(app: Callable[..., Any] | None = None, **options: Any) -> Iterator[BackgroundHttpServer]:
    """A started BackgroundHttpServer on 127.0.0.1 (the monitoring app unless `app`), stopped after."""
    ready_app = MonitoringApp(CollectorRegistry())
    ready_app.ready = True
    server = BackgroundHttpServer(app or ready_app, "127.0.0.1", 0, name="test-http", **options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- methods ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_methods_other_than_get_and_head_get_405_with_allow(mixer_server: Any, method: str) -> None:
    for path in ("/metrics", "/healthz", "/nowhere"):
        status, headers, body = request(mixer_server.monitoring_port, method, path)
        assert (status, headers["allow"]) == (405, "GET, HEAD")
        assert body == b"method not allowed; use GET, HEAD\n"


def test_head_gets_the_headers_of_get_and_no_body(mixer_server: Any) -> None:
    port = mixer_server.monitoring_port
    for path in ("/healthz", "/version", "/nowhere"):
        get_status, get_headers, get_body = request(port, "GET", path)
        answer = raw(port, f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head, _, after = answer.partition(b"\r\n\r\n")
        assert after == b""  # nothing after the headers
        status_line, *header_lines = head.decode().split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in header_lines)
        assert int(status_line.split()[1]) == get_status
        assert headers["content-length"] == str(len(get_body)) == get_headers["content-length"]
        assert headers["content-type"] == get_headers["content-type"]
    status, headers, _ = request(port, "HEAD", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")


def test_a_malformed_request_gets_400_and_a_huge_head_431(mixer_server: Any) -> None:
    port = mixer_server.monitoring_port
    assert raw(port, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    huge = b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 64 * 1024 + b"\r\n\r\n"
    assert raw(port, huge).startswith(b"HTTP/1.1 431 ")


def test_the_query_string_and_headers_reach_the_app() -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        seen.update(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    with serving(app) as server:
        assert raw(server.port, b"GET /a%20b?x=1 HTTP/1.1\r\nHost: h\r\nAccept: a\r\nAccept: b\r\n\r\n")
    assert (seen["PATH_INFO"], seen["QUERY_STRING"]) == ("/a b", "x=1")
    assert (seen["HTTP_HOST"], seen["HTTP_ACCEPT"], seen["wsgi.url_scheme"]) == ("h", "a,b", "http")


# -- other methods (the admin page's POST) ----------------------------------------------------------------


def _echo(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["REQUEST_METHOD"].encode() + b" " + body]


def test_a_server_given_post_reads_its_body_and_still_refuses_the_rest() -> None:
    with serving(_echo, methods=("GET", "POST"), max_body=100) as server:
        post = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
        assert raw(server.port, post).endswith(b"\r\n\r\nPOST hello")
        assert raw(server.port, b"GET /x HTTP/1.1\r\n\r\n").endswith(b"\r\n\r\nGET ")
        assert raw(server.port, b"HEAD /x HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200 ")  # with GET
        status, headers, _ = request(server.port, "PUT", "/x")
        assert (status, headers["allow"]) == (405, "GET, POST, HEAD")
        no_length = raw(server.port, b"POST /x HTTP/1.1\r\n\r\n")
        assert no_length.startswith(b"HTTP/1.1 411 ")
        chunked = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        assert raw(server.port, chunked).startswith(b"HTTP/1.1 501 ")
        too_big = b"POST /x HTTP/1.1\r\nContent-Length: 101\r\n\r\n" + b"a" * 101
        assert raw(server.port, too_big).startswith(b"HTTP/1.1 413 ")


def test_a_body_that_does_not_come_is_cut_after_the_header_timeout() -> None:
    with serving(_echo, methods=("POST",), header_timeout=1.0) as server:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")  # 7 bytes short
            assert closed_after(sock, 30) < 30
        status, headers, _ = request(server.port, "GET", "/x")
        assert (status, headers["allow"]) == (405, "POST")


# -- slow clients -----------------------------------------------------------------------------------------


def test_a_client_holding_a_partial_request_is_cut_after_the_header_timeout() -> None:
    with serving(header_timeout=1.0) as server, ExitStack() as stack:
        partial = stack.enter_context(socket.create_connection(("127.0.0.1", server.port)))
        partial.sendall(b"GET /heal")  # and nothing more
        trickle = stack.enter_context(socket.create_connection(("127.0.0.1", server.port)))
        stop = threading.Event()

        def send_slowly() -> None:  # slowloris: a byte well within any per-read timeout, forever
            with contextlib.suppress(OSError):  # until the server cuts it
                for byte in b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 1000:
                    if stop.wait(0.1):
                        return
                    trickle.send(bytes([byte]))

        sender = threading.Thread(target=send_slowly)
        sender.start()
        try:
            # Others are answered meanwhile.
            assert request(server.port, "GET", "/healthz", timeout=1)[0] == 200
            # Cut by the 1 s header timeout (the trickle alone would take 100 s); generous for loaded CI.
            assert closed_after(partial, 30) < 30
            assert closed_after(trickle, 30) < 30
        finally:
            stop.set()
            sender.join()
        assert request(server.port, "GET", "/healthz", timeout=1)[0] == 200


def test_the_default_header_timeout_is_a_few_seconds(mixer_server: Any) -> None:
    with socket.create_connection(("127.0.0.1", mixer_server.monitoring_port)) as partial:
        partial.sendall(b"GET /metrics HTTP/1.1\r\n")
        assert 3 < closed_after(partial, 20) < 10


def test_300_idle_connections_take_no_threads_and_metrics_still_answers(mixer_server: Any) -> None:
    port = mixer_server.monitoring_port
    assert request(port, "GET", "/metrics")[0] == 200  # the app's thread pool has started
    before = threading.active_count()
    with ExitStack() as stack:
        idle = [stack.enter_context(socket.create_connection(("127.0.0.1", port))) for _ in range(300)]
        for sock in idle[::2]:
            sock.sendall(b"GET /metrics HTTP/1.1\r\n")  # half of them with a partial request
        time.sleep(0.5)  # let the server accept them all
        assert threading.active_count() - before < 5
        status, _, body = request(port, "GET", "/metrics", timeout=5)
        assert status == 200 and b"mixerd_check_requests_total" in body
        assert threading.active_count() - before < 5


def test_connections_beyond_the_limit_are_closed_at_once() -> None:
    with serving(max_connections=3, header_timeout=300) as server, ExitStack() as stack:
        held = [stack.enter_context(socket.create_connection(("127.0.0.1", server.port))) for _ in range(3)]
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", server.port)) as extra:
            assert closed_after(extra, 60) < 60  # closed by the limit, not by any timeout
        for sock in held:
            sock.close()
        time.sleep(0.2)
        assert request(server.port, "GET", "/healthz")[0] == 200


def test_a_slow_page_leaves_the_others_answering() -> None:
    release = threading.Event()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/slow":
            release.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["PATH_INFO"].encode()]

    with serving(app, workers=2) as server:
        slow = threading.Thread(target=request, args=(server.port, "GET", "/slow"))
        slow.start()
        try:
            assert request(server.port, "GET", "/fast", timeout=2)[2] == b"/fast"
        finally:
            release.set()
            slow.join()


def test_an_app_that_raises_gets_500_and_the_server_serves_on() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("boom")
        start_response("200 OK", [])
        return [b"fine"]

    with serving(app) as server:
        assert request(server.port, "GET", "/boom")[0] == 500
        assert request(server.port, "GET", "/")[2] == b"fine"


def test_stop_closes_open_connections() -> None:
    # The header timeout is far away, so a close seen at all is stop's doing (whatever the machine's load).
    with serving(header_timeout=300) as server, socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /")
        time.sleep(0.1)
        threading.Thread(target=server.stop).start()
        assert closed_after(sock, 60) < 60


def test_a_stalled_metrics_scrape_never_stalls_check(
    mixer_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def stalled(registry: Any) -> bytes:
        release.wait(10)
        return b""

    monkeypatch.setattr(monitoring, "generate_latest", stalled)
    scrapes = [
        threading.Thread(target=request, args=(mixer_server.monitoring_port, "GET", "/metrics"))
        for _ in range(WORKERS + 2)  # every app thread busy, and more waiting
    ]
    for scrape in scrapes:
        scrape.start()
    try:
        with grpc.insecure_channel(mixer_server.address) as channel:
            answer = mixer_pb2_grpc.MixerStub(channel).Check(mixer_pb2.CheckRequest(), timeout=2)
        assert answer.precondition.status.code == 0
    finally:
        release.set()
        for scrape in scrapes:
            scrape.join()


def test_stop_from_several_threads_at_once() -> None:
    errors: list[BaseException] = []

    def stop(server: BackgroundHttpServer) -> None:
        try:
            server.stop()
        except BaseException as e:  # a thread's exception would only be printed
            errors.append(e)

    for _ in range(20):  # the window between two stops is small: try it many times
        with serving() as server, socket.create_connection(("127.0.0.1", server.port)) as held:
            held.sendall(b"GET /")  # an open connection to close makes the server's end slower
            time.sleep(0.01)
            stoppers = [threading.Thread(target=stop, args=(server,)) for _ in range(4)]
            for stopper in stoppers:
                stopper.start()
            stop(server)
            for stopper in stoppers:
                stopper.join(30)
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", server.port), timeout=5)
        stop(server)  # and once more after the context's own stop
    assert errors == []
