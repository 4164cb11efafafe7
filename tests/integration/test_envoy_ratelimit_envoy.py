"""A real Envoy (`envoy.filters.http.ratelimit`, the route's `rate_limits` actions) in front of a recording
upstream, asking mixerd's rate limit service: the request after the limit gets 429 and never reaches
the upstream, Envoy's X-RateLimit headers carry mixerd's current_limit / limit_remaining /
duration_until_reset, and `requests_per_unit: 0` blocks from the first request.

With envoyproxy/ratelimit's own files (`--ratelimit-config`) and a manual clock, Envoy's
`X-RateLimit-Reset` reads exactly what envoyproxy/ratelimit's answer gives (whole seconds: 18 with
17.7 s left, where nanoseconds would make Envoy, which truncates, say 17), and the `RateLimit-*`
headers of `ratelimit_limit_response_headers_enabled` reach the client, on the 429 too.

Envoy runs through tests/peers/envoy.py (the `upstream` and `start_envoy` fixtures of conftest.py). The
filter's timeout is raised from Envoy's 20 ms to 2 s, so a slow test machine cannot turn an answer into
Envoy's fail-open pass.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from peers.envoy import EnvoyProxy, RateLimit, Upstream, generic_key, request_header

from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime
from mixerd.testing_scenarios import run_mixer

pytestmark = pytest.mark.integration

CONFIG = """\
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: counter, namespace: istio-system}
spec:
  compiledAdapter: memquota
---
apiVersion: config.istio.io/v1alpha2
kind: ratelimitconfig
metadata: {name: edge, namespace: istio-system}
spec:
  domain: edge
  handler: counter
  descriptors:
  - key: generic_key
    value: api
    descriptors:
    - key: user
      value: robot
      rate_limit: {unit: hour, requests_per_unit: 0}
    - key: user
      rate_limit: {unit: hour, requests_per_unit: 3}
"""
LIMIT = 3


@pytest.fixture
def envoy(
    tmp_path: Path,
    start_mixer_server: Callable[..., Any],
    upstream: Upstream,
    start_envoy: Callable[..., EnvoyProxy],
) -> EnvoyProxy:
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "ratelimit.yaml").write_text(CONFIG)
    mixer = start_mixer_server(config=str(folder))
    ratelimit = RateLimit(
        mixer.address,
        "edge",
        [[generic_key("api"), request_header("x-user", "user")]],
        timeout=2.0,
        extra={"enable_x_ratelimit_headers": "DRAFT_VERSION_03"},
    )
    return start_envoy(upstream, ratelimit=ratelimit)


def test_the_request_after_the_limit_gets_429(envoy: EnvoyProxy, upstream: Upstream) -> None:
    answers = [envoy.get("/books", headers={"x-user": "carol"}) for _ in range(LIMIT + 1)]

    assert [a.status for a in answers] == [200] * LIMIT + [429]
    assert len(upstream.received()) == LIMIT
    # Envoy's draft-03 headers, from each status's current_limit, limit_remaining and duration_until_reset.
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert all(a.headers["x-ratelimit-limit"].startswith("3, 3;w=3600") for a in answers)
    assert all(0 < int(a.headers["x-ratelimit-reset"]) <= 3600 for a in answers)
    assert answers[-1].headers["x-envoy-ratelimited"] == "true"
    # Another user has a budget of their own.
    assert envoy.get("/books", headers={"x-user": "dave"}).status == 200
    assert envoy.stat("cluster.upstream.ratelimit.over_limit") == 1
    assert envoy.stat("cluster.upstream.ratelimit.ok") == LIMIT + 1


def test_zero_requests_per_unit_blocks_from_the_first_request(envoy: EnvoyProxy, upstream: Upstream) -> None:
    assert envoy.get("/", headers={"x-user": "robot"}).status == 429
    assert upstream.received() == []


S = 1_000_000_000
FILE = """\
domain: files
descriptors:
  - key: user
    rate_limit:
      unit: minute
      requests_per_unit: 2
"""


def test_reset_and_limit_headers_from_envoyproxy_ratelimit_files(
    tmp_path: Path, upstream: Upstream, start_envoy: Callable[..., EnvoyProxy]
) -> None:
    limits = tmp_path / "ratelimit"
    limits.mkdir()
    (limits / "files.yaml").write_text(FILE)
    (tmp_path / "config").mkdir()
    now = 1_700_006_400 * S + 42 * S + 300_000_000  # 17.7 s before the minute ends
    runtime = Runtime(load_adapters(), folder=tmp_path / "config", clock=lambda: now)
    with run_mixer(
        runtime, ratelimit_config=str(limits), ratelimit_limit_response_headers_enabled=True
    ) as mixer:
        ratelimit = RateLimit(
            mixer.address,
            "files",
            [[request_header("x-user", "user")]],
            timeout=2.0,
            extra={"enable_x_ratelimit_headers": "DRAFT_VERSION_03"},
        )
        envoy = start_envoy(upstream, ratelimit=ratelimit)
        answers = [envoy.get("/", headers={"x-user": "erin"}) for _ in range(3)]
    assert [a.status for a in answers] == [200, 200, 429]
    for answer, left in zip(answers, ["1", "0", "0"], strict=True):
        headers = answer.headers
        assert headers["x-ratelimit-limit"].startswith("2, 2;w=60")
        assert (headers["x-ratelimit-remaining"], headers["x-ratelimit-reset"]) == (left, "18")
        # envoyproxy/ratelimit's own headers, from the answer's response_headers_to_add
        assert (headers["ratelimit-limit"], headers["ratelimit-remaining"]) == ("2", left)
        assert headers["ratelimit-reset"] == "18"
