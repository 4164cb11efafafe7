"""The admin page over a real server and real HTTP: every view and JSON twin, the methods it takes, the
loopback guard, live changes (a broken edit, Envoy's access-log streams), and the page turned off."""

from __future__ import annotations

import http.client
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from mixerd.api.envoy.service.accesslog.v3 import als_pb2
from mixerd.server.admin.views import TWINS, VIEWS

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[1] / "data" / "admin"
ALS = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"


def request(
    url: str, method: str = "GET", path: str = "/", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


def twin(url: str, name: str) -> dict[str, Any]:
    status, _, body = request(url, path=f"/debug/{name}")
    assert status == 200, body
    return json.loads(body)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.05)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    folder = tmp_path / "config"
    shutil.copytree(DATA, folder)
    return folder


@pytest.fixture
def admin(start_mixer_server: Callable[..., Any], config: Path) -> Iterator[Any]:
    server = start_mixer_server(config=str(config), config_poll_interval=0.05)
    assert server.admin_url.startswith("http://127.0.0.1:")
    yield server


def test_every_view_and_twin_answers(admin: Any) -> None:
    for view in VIEWS:
        status, headers, body = request(admin.admin_url, path=f"/{view.slug}")
        assert (status, headers["content-type"]) == (200, "text/html; charset=utf-8"), view.slug
        assert body.startswith(b"<!DOCTYPE html>") and f"<h1>{view.title}</h1>".encode() in body.replace(
            b"&amp;", b"&"
        )
        assert b"hunter2" not in body
    for name in TWINS:
        assert "hunter2" not in json.dumps(twin(admin.admin_url, name))
    assert twin(admin.admin_url, "config")["generation"] == 1
    routes = twin(admin.admin_url, "routes")
    assert [ns["namespace"] for ns in routes["namespaces"]] == ["istio-system", "bookinfo"]


def test_head_answers_like_get_and_other_methods_are_refused(admin: Any) -> None:
    status, headers, body = request(admin.admin_url, "HEAD", "/routes")
    assert (status, body) == (200, b"")
    assert int(headers["content-length"]) == len(request(admin.admin_url, path="/routes")[2])
    status, headers, _ = request(admin.admin_url, "POST", "/debug/config")
    assert (status, headers["allow"]) == (405, "GET, HEAD")  # POST is for /debug/explain only
    for method in ("PUT", "DELETE"):
        status, headers, _ = request(admin.admin_url, method, "/debug/config")
        assert (status, headers["allow"]) == (405, "GET, HEAD, POST")


def test_a_page_of_another_site_cannot_read_it_through_dns_rebinding(admin: Any) -> None:
    status, _, body = request(admin.admin_url, path="/debug/config", headers={"Host": "evil.example:80"})
    assert (status, body) == (403, b"this admin page answers only to localhost\n")
    assert request(admin.admin_url, path="/debug/config", headers={"Host": "localhost:1"})[0] == 200


def test_a_broken_edit_shows_as_the_last_rejection_and_a_good_one_clears_it(admin: Any, config: Path) -> None:
    good = (config / "policy.yaml").read_text()
    (config / "policy.yaml").write_text(good.replace("handler: deny-blocked", "handler: nowhere"))
    wait_until(lambda: twin(admin.admin_url, "config")["last_rejection"] is not None, "rejection")
    rejection = twin(admin.admin_url, "config")["last_rejection"]
    [error] = rejection["errors"]
    assert (error["file"], error["path"]) == ("policy.yaml", ".spec.actions[0].handler")
    page = request(admin.admin_url, path="/config")[2].decode()
    assert "policy.yaml" in page and ".spec.actions[0].handler" in page
    (config / "policy.yaml").write_text(good + "\n# edited\n")
    wait_until(lambda: twin(admin.admin_url, "config")["generation"] == 2, "the next config")
    assert twin(admin.admin_url, "config")["last_rejection"] is None


def test_envoy_access_log_streams_are_listed_while_open(admin: Any) -> None:
    message = als_pb2.StreamAccessLogsMessage()
    message.identifier.node.id = "sidecar~10.0.0.7~reviews-v1.default~default.svc.cluster.local"
    message.identifier.node.cluster = "reviews"
    message.identifier.log_name = "mesh-<log>"
    entry = message.http_logs.log_entry.add()
    entry.request.path = "/reviews/1"
    sent = [message.SerializeToString()]
    release = threading.Event()

    def messages() -> Iterator[bytes]:
        yield from sent
        release.wait(20)  # the stream stays open until the test has looked

    with grpc.insecure_channel(admin.address) as channel:
        call = channel.stream_unary(ALS)
        future = call.future(messages())
        try:
            wait_until(lambda: twin(admin.admin_url, "accesslog")["open"] == 1, "an open stream")
            wait_until(lambda: twin(admin.admin_url, "accesslog")["streams"][0]["entries"] == 1, "its entry")
            [stream] = twin(admin.admin_url, "accesslog")["streams"]
            assert (stream["node_id"], stream["cluster"], stream["log_name"]) == (
                "sidecar~10.0.0.7~reviews-v1.default~default.svc.cluster.local",
                "reviews",
                "mesh-<log>",
            )
            assert stream["peer"].startswith(("ipv4:127.0.0.1:", "ipv6:"))
            assert b"mesh-&lt;log&gt;" in request(admin.admin_url, path="/accesslog")[2]
        finally:
            release.set()
        future.result(timeout=20)
    wait_until(lambda: twin(admin.admin_url, "accesslog")["open"] == 0, "the stream's end")
    assert twin(admin.admin_url, "accesslog")["opened"] == 1


def test_the_page_can_be_turned_off(start_mixer_server: Callable[..., Any]) -> None:
    server = start_mixer_server(admin_port=-1)
    assert (server.admin_url, server.running.admin_port) == (None, None)
    assert [line.split(" on ")[0] for line in server.running.ready_lines()] == [
        "mixerd: serving istio.mixer.v1.Mixer, envoy.service.auth.v3.Authorization, "
        "envoy.service.ratelimit.v3.RateLimitService, envoy.service.accesslog.v3.AccessLogService",
        "mixerd: monitoring",
    ]


def test_without_a_rule_engine_the_views_say_so(mixer_server: Any) -> None:
    status, _, body = request(mixer_server.admin_url, path="/routes")
    assert status == 200 and b"no rule engine" in body
