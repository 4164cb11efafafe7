"""ext_authz end to end: a real Envoy (tests/peers/envoy.py) with the ext_authz filter and the per-route
context extensions exactly as docs/envoy/authz.md shows them, calling mixerd on the test policy
(tests/data/envoy/authz/policy), in front of a recording upstream."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from peers import receivers as peers
from peers.envoy import EnvoyProxy, ExtAuthz, Upstream

from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime
from mixerd.testing_scenarios import RunningMixer, run_mixer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "tests" / "data" / "envoy" / "authz" / "policy"
DOC = REPO / "docs" / "envoy" / "authz.md"


def doc_yaml_blocks() -> list[Any]:
    text = DOC.read_text(encoding="utf-8")
    return [list(yaml.safe_load_all(block)) for block in re.findall(r"```yaml\n(.*?)```", text, flags=re.S)]


def doc_filter_and_route() -> tuple[dict[str, Any], dict[str, Any]]:
    """The ext_authz filter and the route of the doc's "Envoy's side"."""
    [[filters], [routes], *_] = doc_yaml_blocks()
    [ext_authz] = filters
    [route] = routes["routes"]
    return ext_authz, route


@pytest.fixture
def mixer() -> Iterator[RunningMixer]:
    with run_mixer(Runtime(load_adapters(), folder=POLICY)) as running:
        yield running


@pytest.fixture
def start_proxy(tmp_path: Path, upstream: Upstream) -> Iterator[Callable[..., EnvoyProxy]]:
    """`start_proxy(mixer_address, failure_mode_allow=False)`: Envoy with the doc's filter and route."""
    proxies: list[EnvoyProxy] = []

    def start(mixer_address: str, *, failure_mode_allow: bool = False) -> EnvoyProxy:
        proxy = EnvoyProxy(tmp_path / f"envoy{len(proxies)}", upstream, ext_authz=ExtAuthz(mixer_address))
        [manager_filter] = proxy.config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
        manager = manager_filter["typed_config"]
        harness_filter = manager["http_filters"][0]
        ext_authz, doc_route = copy.deepcopy(doc_filter_and_route())
        assert harness_filter["name"] == ext_authz["name"]
        settings = ext_authz["typed_config"]
        # The harness's cluster for mixerd, and a deadline a loaded test machine cannot miss.
        settings["grpc_service"] = {**harness_filter["typed_config"]["grpc_service"], "timeout": "5s"}
        settings["failure_mode_allow"] = failure_mode_allow
        manager["http_filters"][0] = ext_authz
        [route] = manager["route_config"]["virtual_hosts"][0]["routes"]
        route["typed_per_filter_config"] = doc_route["typed_per_filter_config"]
        proxies.append(proxy)
        return proxy.start()

    try:
        yield start
    finally:
        for proxy in proxies:
            proxy.stop()


def test_an_allowed_request_reaches_the_upstream_with_the_rules_headers(
    mixer: RunningMixer, upstream: Upstream, start_proxy: Callable[..., EnvoyProxy]
) -> None:
    envoy = start_proxy(mixer.address)
    for _ in range(3):
        answer = envoy.get("/api/books", headers={"x-user": "alice", "x-internal": "secret"})
        assert (answer.status, answer.body) == (200, upstream.body)
        assert answer.headers["x-served-by"] == "mixerd"
    received = upstream.received()
    assert len(received) == 3
    for request in received:
        assert request.headers["x-mixer-user"] == "alice"
        assert request.headers["x-tag"] == "checked"
        assert request.headers["x-tenant"] == "gold"  # from the route's context_extensions
        assert "x-internal" not in request.headers
    # Envoy's requests differ in x-request-id and time, which no rule reads: two came from the cache.
    assert mixer.metric("mixerd_authz_cache_hits_total") == 2
    assert mixer.metric('mixerd_authz_requests_total{outcome="allowed"}') == 3


def test_denied_requests_get_the_rules_status_body_and_headers(
    mixer: RunningMixer, upstream: Upstream, start_proxy: Callable[..., EnvoyProxy]
) -> None:
    envoy = start_proxy(mixer.address)

    blocked = envoy.get("/api/books", headers={"x-user": "blocked"})
    assert (blocked.status, blocked.body) == (403, b"blocked.handler.istio-system:this user is blocked")

    login = envoy.get("/private")
    assert (login.status, login.body) == (302, b"redirecting to the login page")
    assert login.headers["location"] == "https://login.example.com/"
    assert login.headers["set-cookie"] == "seen=1, next=/private"  # two Set-Cookie headers

    busy = envoy.get("/busy")
    assert (busy.status, busy.body) == (429, b"busy.handler.istio-system:slow down")

    assert upstream.received() == []
    assert mixer.metric('mixerd_authz_requests_total{outcome="denied"}') == 3


def test_what_mixerd_makes_of_envoys_request(
    mixer: RunningMixer, upstream: Upstream, start_proxy: Callable[..., EnvoyProxy]
) -> None:
    envoy = start_proxy(mixer.address)
    answer = envoy.get("/echo?q=books&q=other")
    assert answer.status == 200
    [received] = upstream.received()
    request_id = received.headers["x-request-id"]  # Envoy's, which mixerd read as request.id
    host = envoy.url.removeprefix("http://")
    assert answer.headers["x-seen"] == (
        f"GET http://{host}/echo q=books HTTP/1.1 http inbound id={request_id}"
    )
    assert answer.headers["x-seen-source"] == "loopback"


@pytest.mark.parametrize(("failure_mode_allow", "status"), [(False, 503), (True, 200)])
def test_a_failed_check_follows_failure_mode_allow(
    mixer: RunningMixer,
    upstream: Upstream,
    start_proxy: Callable[..., EnvoyProxy],
    failure_mode_allow: bool,
    status: int,
) -> None:
    envoy = start_proxy(mixer.address, failure_mode_allow=failure_mode_allow)
    answer = envoy.get("/fail")
    assert answer.status == status  # 503: the doc's status_on_error
    assert upstream.paths() == (["/fail"] if failure_mode_allow else [])
    assert mixer.metric('mixerd_authz_requests_total{outcome="error"}') == 1
    stat = (
        "http.ingress.ext_authz.failure_mode_allowed"
        if failure_mode_allow
        else "http.ingress.ext_authz.error"
    )
    assert peers.wait_until(lambda: envoy.stat(stat) == 1, what=stat)


def test_the_docs_example_policy_is_the_tested_one() -> None:
    served = list(yaml.safe_load_all((POLICY / "policy.yaml").read_text(encoding="utf-8")))
    shown = [
        block for block in doc_yaml_blocks() if block and isinstance(block[0], dict) and "kind" in block[0]
    ]
    assert shown, "docs/envoy/authz.md shows no example policy"
    for document in (d for block in shown for d in block):
        assert document in served, f"docs/envoy/authz.md shows {document['metadata']} unlike {POLICY}"
