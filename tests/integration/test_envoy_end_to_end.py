"""Issue 7 end to end: a real Envoy in front of a recording upstream, with all three of its filters
calling ONE mixerd (ext_authz, ratelimit, the gRPC access logger), on the config folder
rules/examples/envoy-mesh/ (the example docs/envoy/README.md serves):

- policy.yaml: users named `blocked*` are denied with a direct response (302, a body, a location
  header); every allowed request gets `x-checked-by: mixerd` and `x-mixer-user: <user>` on its way up;
- ratelimit.yaml: a `ratelimitconfig` for the domain `edge`: 3 requests an hour per user (memquota);
- telemetry.yaml: a prometheus counter `istio_requests_total` by response code, method and user,
  fed by the access-log entries Envoy streams.

Each test gets a fresh mixerd, upstream and Envoy (about half a second), so no counter or series leaks
from one test into another.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from peers import receivers as peers
from peers.envoy import AccessLog, EnvoyProxy, ExtAuthz, RateLimit, Upstream, generic_key, request_header
from prometheus_client.parser import text_string_to_metric_families

from mixerd_adapters.prometheus import exporter

pytestmark = pytest.mark.integration

#: The bundled example served (as a copy: see the bundled_rules fixture).
EXAMPLE = "examples/envoy-mesh"
DOMAIN = "edge"  # ratelimit.yaml
LIMIT = 3  # requests per user, ratelimit.yaml


@dataclass
class Mesh:
    mixer: Any  # conftest.MixerServer
    upstream: Upstream
    envoy: EnvoyProxy

    def get(self, user: str, path: str = "/") -> tuple[int, dict[str, str], bytes]:
        answer = self.envoy.get(path, headers={"x-user": user})
        return answer.status, answer.headers, answer.body

    def requests_total(self) -> dict[tuple[str, str, str], float]:
        """istio_requests_total as scraped over HTTP: (response_code, request_method, user) -> count."""
        endpoint = exporter.current()
        assert endpoint is not None, "no prometheus endpoint: the telemetry handler is not running"
        with urllib.request.urlopen(f"http://127.0.0.1:{endpoint.port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        out = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "istio_requests_total":
                    labels = sample.labels
                    out[labels["response_code"], labels["request_method"], labels["user"]] = sample.value
        return out


@pytest.fixture
def mesh(
    start_mixer_server: Callable[..., Any],
    upstream: Upstream,
    start_envoy: Callable[..., EnvoyProxy],
    bundled_rules: Callable[[str], Path],
) -> Mesh:
    mixer = start_mixer_server(config=str(bundled_rules(EXAMPLE)), prometheus_port=0)
    envoy = start_envoy(
        upstream,
        # Generous timeouts, and a ratelimit filter that fails closed: a slow machine must not turn a
        # verdict into Envoy's failure mode (a silent pass, for the ratelimit filter's defaults).
        ext_authz=ExtAuthz(mixer.address, timeout=5),
        ratelimit=RateLimit(
            mixer.address,
            DOMAIN,
            [[generic_key("api"), request_header("x-user", "user")]],
            timeout=5,
            failure_mode_deny=True,
        ),
        access_log=AccessLog(mixer.address, log_name="edge", request_headers=["x-user"]),
    )
    return Mesh(mixer, upstream, envoy)


def test_an_allowed_request_reaches_the_upstream_with_the_rules_headers(mesh: Mesh) -> None:
    status, _, body = mesh.get("alice", "/books/1")
    assert (status, body) == (200, mesh.upstream.body)
    assert mesh.get("bob", "/books/2")[0] == 200  # the verdict cache must not hand bob alice's headers

    alice, bob = mesh.upstream.received()
    assert (alice.path, alice.headers["x-checked-by"], alice.headers["x-mixer-user"]) == (
        "/books/1",
        "mixerd",
        "alice",
    )
    assert (bob.path, bob.headers["x-checked-by"], bob.headers["x-mixer-user"]) == (
        "/books/2",
        "mixerd",
        "bob",
    )


def test_a_denied_request_gets_the_rules_response_and_never_reaches_the_upstream(mesh: Mesh) -> None:
    status, headers, body = mesh.get("blocked-bob", "/books/1")

    assert status == 302
    assert body == b"please sign in again"
    assert headers["location"] == "https://login.example.com/"
    assert mesh.upstream.received() == []


def test_the_request_after_the_limit_gets_429(mesh: Mesh) -> None:
    statuses = [mesh.get("carol")[0] for _ in range(LIMIT + 1)]

    assert statuses == [200] * LIMIT + [429]
    assert len(mesh.upstream.received()) == LIMIT
    assert mesh.envoy.stat("cluster.upstream.ratelimit.over_limit") == 1  # the ratelimit filter's 429
    # Another user has a budget of their own.
    assert mesh.get("dave")[0] == 200


def test_access_logs_become_istio_requests_total_series(mesh: Mesh) -> None:
    for user in ("erin", "erin", "blocked-frank"):
        mesh.get(user)
    for _ in range(LIMIT + 1):
        mesh.get("grace")

    expected = {
        ("200", "GET", "erin"): 2.0,
        ("302", "GET", "blocked-frank"): 1.0,
        ("200", "GET", "grace"): float(LIMIT),
        ("429", "GET", "grace"): 1.0,
    }
    # Envoy flushes its access-log buffer every buffer_flush_interval (50 ms here): wait for all of them.
    peers.wait_until(
        lambda: sum(mesh.requests_total().values()) >= sum(expected.values()),
        timeout=10,
        what="istio_requests_total to count every request",
    )
    assert mesh.requests_total() == expected
