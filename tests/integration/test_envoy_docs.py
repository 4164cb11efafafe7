"""docs/envoy/README.md holds: its bootstrap is what the test harness generates, Envoy accepts it, and its
commands do what their comments say against mixerd on the config folder it names."""

from __future__ import annotations

import re
import shlex
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from peers import receivers as peers
from peers.envoy import (
    AccessLog,
    EnvoyProxy,
    ExtAuthz,
    RateLimit,
    Upstream,
    bootstrap,
    generic_key,
    request_header,
    validate,
)

from mixerd_adapters.prometheus import exporter

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "docs" / "envoy" / "README.md").read_text()
MIXERD, UPSTREAM = ("127.0.0.1", 9091), ("127.0.0.1", 8080)


def _readme_bootstrap() -> dict[str, Any]:
    # The bootstrap is the one block that starts with admin (the TLS section's cluster is another).
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", README, flags=re.S) if b.startswith("admin:")]
    config: dict[str, Any] = yaml.safe_load(block)
    return config


def _commands() -> list[str]:
    [block] = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    return [line.strip() for line in block.splitlines() if line.strip()]


def _socket_addresses(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every socket_address of the bootstrap (admin, listeners, cluster endpoints), to rewrite ports."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "socket_address":
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(config)
    return found


def test_the_readme_bootstrap_is_what_the_harness_generates() -> None:
    readme = _readme_bootstrap()
    [listener] = readme["static_resources"]["listeners"]
    listener["address"]["socket_address"].update(address="127.0.0.1", port_value=0)  # the harness's
    mixerd = f"{MIXERD[0]}:{MIXERD[1]}"
    generated = bootstrap(
        f"{UPSTREAM[0]}:{UPSTREAM[1]}",
        ext_authz=ExtAuthz(mixerd),
        ratelimit=RateLimit(mixerd, "edge", [[generic_key("api"), request_header("x-user", "user")]]),
        access_log=AccessLog(mixerd, log_name="edge", buffer_flush_interval=1.0, request_headers=["x-user"]),
    )
    assert readme["static_resources"] == generated["static_resources"]


def test_envoy_accepts_the_readme_bootstrap(tmp_path: Path) -> None:
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(_readme_bootstrap()))
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readme_commands_do_what_they_say(
    start_mixer_server: Callable[..., Any], upstream: Upstream, tmp_path: Path
) -> None:
    commands = _commands()
    serve = shlex.split(commands[0])
    assert serve[:2] == ["mixerd", "serve"]
    mixer = start_mixer_server(config=str(REPO / serve[serve.index("--config") + 1]), prometheus_port=0)
    # The README's bootstrap with the ports of this test (Envoy's own free ports, the real servers'), and
    # timeouts a busy machine cannot miss: the outcome must not depend on timing.
    config = _readme_bootstrap()
    ports = {UPSTREAM: upstream.port, MIXERD: mixer.port}
    for address in _socket_addresses(config):
        address["port_value"] = ports.get((address["address"], address["port_value"]), 0)
        address["address"] = "127.0.0.1"
    [manager] = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
    ext_authz, ratelimit, _ = manager["typed_config"]["http_filters"]
    ext_authz["typed_config"]["grpc_service"]["timeout"] = "5s"
    ratelimit["typed_config"]["timeout"] = "5s"
    with EnvoyProxy(tmp_path, upstream, config=config) as envoy:
        curls = [line for line in commands if line.startswith("curl -H")]
        assert len(curls) == 2
        for line in curls:
            match = re.fullmatch(r"curl -H '([^']+)' localhost:10000(\S+)\s+# (\d{3}).*", line)
            assert match is not None, line
            header, path, status = match.groups()
            name, _, value = header.partition(": ")
            assert envoy.get(path, headers={name: value}).status == int(status), line
        assert upstream.received()[0].headers["x-checked-by"] == "mixerd"

        [scrape] = [line for line in commands if "/metrics" in line]
        assert "localhost:42422/metrics | grep istio_requests_total" in scrape
        endpoint = exporter.current()
        assert endpoint is not None

        def series() -> list[str]:
            with urllib.request.urlopen(f"http://127.0.0.1:{endpoint.port}/metrics", timeout=5) as answer:
                lines = answer.read().decode().splitlines()
            return [line for line in lines if line.startswith("istio_requests_total{")]

        # Two requests, two series (200 for alice, 302 for blocked-bob), after a 1 s log flush.
        peers.wait_until(lambda: len(series()) == 2, timeout=10, what="two istio_requests_total series")
        assert sorted(re.findall(r'response_code="(\d+)"', "".join(series()))) == ["200", "302"]
