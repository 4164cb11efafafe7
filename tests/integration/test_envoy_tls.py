"""A real Envoy calling mixerd's ext_authz over mTLS (docs/envoy/README.md, "TLS and mTLS"): mixerd with
--tls-cert-file and --tls-client-ca-file, Envoy's mixerd cluster with an `envoy.transport_sockets.tls`
transport socket (tests/peers/envoy.py `UpstreamTls`); the README's cluster is the harness's, and Envoy
accepts it."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from peers.certs import TestPki
from peers.envoy import EnvoyProxy, ExtAuthz, Upstream, UpstreamTls, bootstrap, validate

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "docs" / "envoy" / "README.md").read_text()
EXAMPLE = "examples/envoy-mesh"  # blocked* users get a 302, others pass (served as a copy)

Start = Callable[..., Any]


def _readme_cluster() -> dict[str, Any]:
    """The mixerd cluster of the README's "TLS and mTLS" section."""
    section = README[README.index("## TLS and mTLS") :]
    [block] = re.findall(r"```yaml\n(.*?)```", section.split("\n## ")[0], flags=re.S)
    clusters: list[dict[str, Any]] = yaml.safe_load(block)["clusters"]
    [cluster] = clusters
    return cluster


def _readme_tls() -> UpstreamTls:
    """The README cluster's choices, as the harness takes them."""
    context = _readme_cluster()["transport_socket"]["typed_config"]
    common = context["common_tls_context"]
    [pair] = common["tls_certificates"]
    [san] = common["validation_context"]["match_typed_subject_alt_names"]
    return UpstreamTls(
        ca_file=common["validation_context"]["trusted_ca"]["filename"],
        cert_file=pair["certificate_chain"]["filename"],
        key_file=pair["private_key"]["filename"],
        sni=context["sni"],
        san=san["matcher"]["exact"],
    )


def _mixerd_cluster(config: dict[str, Any]) -> dict[str, Any]:
    [cluster] = [c for c in config["static_resources"]["clusters"] if c["name"] == "mixerd"]
    return cluster


def test_the_readme_cluster_is_what_the_harness_generates() -> None:
    readme = _readme_cluster()
    [endpoint] = readme["load_assignment"]["endpoints"][0]["lb_endpoints"]
    address = endpoint["endpoint"]["address"]["socket_address"]
    mixerd = f"{address['address']}:{address['port_value']}"
    generated = bootstrap("127.0.0.1:8080", ext_authz=ExtAuthz(mixerd, tls=_readme_tls()))
    assert readme == _mixerd_cluster(generated)


def test_envoy_accepts_the_readme_cluster(pki: TestPki, tmp_path: Path) -> None:
    # The README's file paths replaced by real files: Envoy reads them when it validates.
    text = yaml.safe_dump(_readme_cluster())
    for path, real in zip(
        (_readme_tls().ca_file, _readme_tls().cert_file, _readme_tls().key_file),
        (pki.ca.cert, pki.client.cert, pki.client.key),
        strict=True,
    ):
        assert path is not None
        text = text.replace(path, str(real))
    config = bootstrap("127.0.0.1:8080", ext_authz=ExtAuthz("127.0.0.1:9091"))
    clusters = config["static_resources"]["clusters"]
    clusters[clusters.index(_mixerd_cluster(config))] = yaml.safe_load(text)
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(config))
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def _mtls_mixer(start_mixer_server: Start, pki: TestPki, rules: Path) -> Any:
    return start_mixer_server(
        config=str(rules),
        prometheus_port=0,  # the config's telemetry rule has a prometheus handler
        tls_cert_file=str(pki.server.cert),
        tls_key_file=str(pki.server.key),
        tls_client_ca_file=str(pki.ca.cert),
    )


def _client_tls(pki: TestPki, **overrides: Any) -> UpstreamTls:
    tls = UpstreamTls(
        ca_file=str(pki.ca.cert),
        cert_file=str(pki.client.cert),
        key_file=str(pki.client.key),
        sni="localhost",
        san="localhost",
    )
    return dataclasses.replace(tls, **overrides)


def test_envoy_asks_mixerd_over_mtls_and_follows_the_rules(
    start_mixer_server: Start,
    upstream: Upstream,
    start_envoy: Callable[..., EnvoyProxy],
    pki: TestPki,
    bundled_rules: Callable[[str], Path],
) -> None:
    mixer = _mtls_mixer(start_mixer_server, pki, bundled_rules(EXAMPLE))
    envoy = start_envoy(upstream, ext_authz=ExtAuthz(mixer.address, timeout=5, tls=_client_tls(pki)))
    allowed = envoy.get("/", headers={"x-user": "alice"})
    assert allowed.status == 200
    assert upstream.received()[-1].headers["x-checked-by"] == "mixerd"
    denied = envoy.get("/", headers={"x-user": "blocked-bob"})
    assert denied.status == 302  # the denier rule's direct response
    assert envoy.stat("cluster.mixerd.ssl.handshake") >= 1
    assert envoy.stat("http.ingress.ext_authz.error") == 0
    assert len(upstream.received()) == 1


@pytest.mark.parametrize(
    ("overrides", "stat"),
    [
        ({"cert_file": None, "key_file": None}, None),  # no client certificate: mixerd refuses
        ({"san": "someone-else.example"}, "cluster.mixerd.ssl.fail_verify_san"),  # Envoy refuses mixerd
    ],
)
def test_envoy_cannot_reach_mixerd_over_a_failing_handshake(
    start_mixer_server: Start,
    upstream: Upstream,
    start_envoy: Callable[..., EnvoyProxy],
    pki: TestPki,
    overrides: dict[str, Any],
    stat: str | None,
    bundled_rules: Callable[[str], Path],
) -> None:
    mixer = _mtls_mixer(start_mixer_server, pki, bundled_rules(EXAMPLE))
    tls = _client_tls(pki, **overrides)
    envoy = start_envoy(upstream, ext_authz=ExtAuthz(mixer.address, timeout=5, tls=tls))
    answer = envoy.get("/", headers={"x-user": "alice"})
    assert answer.status == 403  # ext_authz's status_on_error: failure_mode_allow is false
    assert envoy.stat("http.ingress.ext_authz.error") == 1
    assert envoy.stat("cluster.mixerd.ssl.handshake") == 0
    if stat is not None:
        assert envoy.stat(stat) >= 1
    assert upstream.received() == []
