"""Decision logs and the debug line per decision, from real servers over real gRPC: Mixer Check (denied,
allowed with quota), ext_authz (dispatched and from the verdict cache), rate limit over its limit;
redaction, sampling, rotation, stdout, /metrics, and `--log-level debug`."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from mixerd.api.envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from mixerd.api.envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc
from mixerd.api.mixer.v1 import mixer_pb2, mixer_pb2_grpc
from mixerd.attribute import GLOBAL_WORDS, encode_attributes
from mixerd.server.app import READY_PATTERN

pytestmark = pytest.mark.integration

DOCS = Path(__file__).resolve().parents[2] / "docs" / "decision-logs.md"
POLICY = """\
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: denier, namespace: istio-system}
spec:
  compiledAdapter: denier
  params: {status: {code: 7, message: not welcome}}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: nothing, namespace: istio-system}
spec: {compiledTemplate: checknothing}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: deny-bots, namespace: istio-system}
spec:
  match: >-
    request.headers["user-agent"] == "bot" || request.headers["authorization"] == "Bearer stolen"
    || request.headers["cookie"] == "stolen" || request.api_key == "stolen"
  actions: [{handler: denier, instances: [nothing]}]
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: tag, namespace: istio-system}
spec:
  match: request.path == "/tagged"
  requestHeaderOperations: [{name: x-tag, values: ['"yes"']}]
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: counter, namespace: istio-system}
spec:
  compiledAdapter: memquota
  params:
    quotas: [{name: requestcount.instance.istio-system, maxAmount: 100, validDuration: 60s}]
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: requestcount, namespace: istio-system}
spec:
  compiledTemplate: quota
  params: {dimensions: {user: source.user | "nobody"}}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: count, namespace: istio-system}
spec:
  actions: [{handler: counter, instances: [requestcount]}]
---
apiVersion: config.istio.io/v1alpha2
kind: ratelimitconfig
metadata: {name: edge, namespace: istio-system}
spec:
  domain: edge
  handler: counter
  descriptors:
  - key: remote_address
    rate_limit: {unit: day, requests_per_unit: 1}
"""
DENIED_BY = "rule deny-bots.rule.istio-system (handler denier.handler.istio-system)"
SECRET = "request.api_key"  # the attribute this test's operator marks secret


@pytest.fixture
def config(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "policy.yaml").write_text(POLICY)
    return folder


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def lines_of(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def mixer_check(address: str, values: dict[str, Any], quotas: dict[str, int] | None = None) -> Any:
    request = mixer_pb2.CheckRequest(
        attributes=encode_attributes(values), global_word_count=len(GLOBAL_WORDS), deduplication_id="d1"
    )
    for name, amount in (quotas or {}).items():
        request.quotas[name].amount = amount
    with grpc.insecure_channel(address) as channel:
        return mixer_pb2_grpc.MixerStub(channel).Check(request, timeout=10)


def authz_check(address: str, headers: dict[str, str]) -> Any:
    request = external_auth_pb2.CheckRequest()
    http = request.attributes.request.http
    http.method, http.path, http.host = "GET", "/books", "books"
    http.headers.update(headers)
    with grpc.insecure_channel(address) as channel:
        return external_auth_pb2_grpc.AuthorizationStub(channel).Check(request, timeout=10)


def should_rate_limit(address: str, *descriptors: list[tuple[str, str]]) -> Any:
    request = rls_pb2.RateLimitRequest(domain="edge")
    for entries in descriptors:
        descriptor = request.descriptors.add()
        for key, value in entries:
            descriptor.entries.add(key=key, value=value)
    with grpc.insecure_channel(address) as channel:
        return rls_pb2_grpc.RateLimitServiceStub(channel).ShouldRateLimit(request, timeout=10)


SECRET_HEADERS = {"authorization": "Bearer s3cret", "cookie": "session=s3cret", "x-user": "alice"}


def test_each_api_writes_one_line_per_decision(
    start_mixer_server: Any, config: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mixerd.decisions")
    log = tmp_path / "decisions.log"
    redact = f"authorization,cookie,set-cookie,proxy-authorization,x-api-key,{SECRET}"
    server = start_mixer_server(config=str(config), decision_log=str(log), decision_log_redact=redact)

    # Mixer Check, denied: every header the match read is there, the secret ones redacted
    denied = mixer_check(
        server.address,
        {
            "request.id": "mixer-denied",
            "request.headers": {"user-agent": "curl", **SECRET_HEADERS},
            SECRET: "stolen",
        },
        {"requestcount": 1},
    )
    assert denied.precondition.status.code == 7
    # Mixer Check, allowed, with its quota
    allowed = mixer_check(
        server.address,
        {
            "request.id": "mixer-allowed",
            "request.path": "/tagged",
            "request.headers": {"user-agent": "curl"},
            "source.user": "alice",
        },
        {"requestcount": 1},
    )
    assert allowed.precondition.status.code == 0 and allowed.quotas["requestcount"].granted_amount == 1
    # ext_authz: dispatched, then the same request from the verdict cache
    for _ in range(2):
        answer = authz_check(server.address, {"user-agent": "bot", "x-request-id": "authz-1"})
        assert answer.status.code == 7
    # rate limit: the second request is over the domain's limit of 1 a day
    should_rate_limit(server.address, [("remote_address", "10.0.0.9")])
    over = should_rate_limit(server.address, [("remote_address", "10.0.0.9")], [("x-api-key", "k-s3cret")])
    assert over.overall_code == rls_pb2.RateLimitResponse.OVER_LIMIT

    records = wait_for(lambda: lines_of(log) if len(lines_of(log)) == 6 else None, "6 decision lines")
    assert "s3cret" not in log.read_text()
    by_api: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_api.setdefault(record["api"], []).append(record)
        assert record["time"].endswith("Z") and record["duration_ms"] >= 0

    first, second = by_api["mixer_check"]
    assert (first["request_id"], first["code"]) == ("mixer-denied", "PERMISSION_DENIED")
    assert first["message"] == "denier.handler.istio-system:not welcome"
    assert first["rules"] == [{"rule": "deny-bots.rule.istio-system", "step": "check"}]
    [call] = first["handlers"]
    assert (call["rule"], call["handler"], call["code"]) == (
        "deny-bots.rule.istio-system",
        "denier.handler.istio-system",
        "PERMISSION_DENIED",
    )
    assert call["instances"] == ["nothing.instance.istio-system"]
    assert first["attributes"] == {
        "request.headers": {"user-agent": "curl", "authorization": "<redacted>", "cookie": "<redacted>"},
        SECRET: "<redacted>",
    }
    assert first["quotas"] == [{"name": "requestcount", "asked": 1, "granted": None, "code": None}]

    assert (second["request_id"], second["code"], second["message"]) == ("mixer-allowed", "OK", "")
    assert {"rule": "tag.rule.istio-system", "step": "headers"} in second["rules"]
    assert {"rule": "count.rule.istio-system", "step": "quota"} in second["rules"]
    assert second["quotas"] == [{"name": "requestcount", "asked": 1, "granted": 1, "code": "OK"}]
    assert second["attributes"]["request.path"] == "/tagged"
    assert second["absent"][:3] == ["request.headers[authorization]", "request.headers[cookie]", SECRET]

    dispatched, cached = by_api["ext_authz"]
    assert (dispatched["request_id"], dispatched["code"], dispatched["cached"]) == (
        "authz-1",
        "PERMISSION_DENIED",
        False,
    )
    assert dispatched["rules"] == [{"rule": "deny-bots.rule.istio-system", "step": "check"}]
    assert dispatched["attributes"] == {"request.headers": {"user-agent": "bot"}}
    assert (cached["request_id"], cached["code"], cached["cached"]) == ("authz-1", "PERMISSION_DENIED", True)
    assert cached["message"] == "denier.handler.istio-system:not welcome"
    # The rules and handlers of the decision the cache stored (it was recorded), not evaluated again.
    assert cached["rules"] == dispatched["rules"] and cached["handlers"] == dispatched["handlers"]

    under, limited = by_api["ratelimit"]
    assert under["code"] == "OK" and limited["code"] == "OVER_LIMIT"
    assert limited["domain"] == "edge"
    assert limited["rules"] == [{"rule": "remote_address", "step": "ratelimit"}]
    assert limited["handlers"] == [{"handler": "counter.handler.istio-system"}]
    assert limited["rate_limits"] == [
        {
            "descriptor": [{"key": "remote_address", "value": "10.0.0.9"}],
            "code": "OVER_LIMIT",
            "limit": {"requests_per_unit": 1, "unit": "DAY"},
            "remaining": 0,
            "rule": "remote_address",
        },
        {"descriptor": [{"key": "x-api-key", "value": "<redacted>"}], "code": "OK"},
    ]
    assert len(limited["request_id"]) == 32  # none was sent: one is made up

    # the debug line per decision names the API, the verdict and the rule and handler that decided
    debug = [r.getMessage() for r in caplog.records if r.name == "mixerd.decisions"]
    assert len(debug) == 6
    assert debug[0].startswith(
        f"mixer_check PERMISSION_DENIED by {DENIED_BY}: denier.handler.istio-system:not welcome "
        "[request mixer-denied, "
    )
    assert debug[1].startswith("mixer_check OK: rules tag.rule.istio-system, count.rule.istio-system held")
    assert debug[3].startswith(
        "ext_authz PERMISSION_DENIED from the verdict cache (decided by rule deny-bots.rule.istio-system)"
    )
    assert debug[5].startswith(
        "ratelimit OVER_LIMIT domain edge: (remote_address=10.0.0.9) OVER_LIMIT by limit remote_address "
        "1/DAY, 0 left; (x-api-key=<redacted>) no limit"
    )

    with urllib.request.urlopen(f"{server.monitoring_url}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    assert "mixerd_decision_log_written_total 6.0" in metrics
    assert "mixerd_decision_log_dropped_total 0.0" in metrics

    # The admin page's Decisions view: the same records, newest first, as the log has them.
    with urllib.request.urlopen(f"{server.admin_url}/debug/decisions", timeout=10) as response:
        recent = json.load(response)
    assert recent["on"] is True and recent["written"] == 6
    assert recent["recent"] == list(reversed(records))
    with urllib.request.urlopen(f"{server.admin_url}/decisions", timeout=10) as response:
        page = response.read().decode()
    assert "mixer-denied" in page and "deny-bots.rule.istio-system (check)" in page
    assert page.count("from the cache") == 1  # the second ext_authz Check
    assert "remote_address=10.0.0.9" in page and "s3cret" not in page


def test_the_documented_example_has_the_real_fields(
    start_mixer_server: Any, config: Path, tmp_path: Path
) -> None:
    log = tmp_path / "decisions.log"
    server = start_mixer_server(config=str(config), decision_log=str(log))
    mixer_check(server.address, {"request.headers": {"user-agent": "bot"}})
    [real] = wait_for(lambda: lines_of(log), "a decision line")
    examples = [json.loads(line) for line in DOCS.read_text().splitlines() if line.startswith('{"time"')]
    assert examples, "docs/decision-logs.md shows an example line"
    mixer_example = next(e for e in examples if e["api"] == "mixer_check")
    assert list(mixer_example) == list(real)


def test_sample_0_writes_nothing(start_mixer_server: Any, config: Path, tmp_path: Path) -> None:
    log = tmp_path / "decisions.log"
    server = start_mixer_server(config=str(config), decision_log=str(log), decision_log_sample=0.0)
    for _ in range(5):
        mixer_check(server.address, {"request.headers": {"user-agent": "bot"}})
        authz_check(server.address, {"user-agent": "bot"})
    server.stop()  # flushes and closes the log
    assert lines_of(log) == []


def test_the_file_is_rotated_at_its_size(start_mixer_server: Any, config: Path, tmp_path: Path) -> None:
    log = tmp_path / "decisions.log"
    limit = 2000
    server = start_mixer_server(
        config=str(config), decision_log=str(log), decision_log_max_bytes=limit, decision_log_backups=2
    )
    for i in range(40):
        mixer_check(server.address, {"request.id": f"r{i}", "request.headers": {"user-agent": "bot"}})
    server.stop()
    files = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("decisions.log"))
    assert files == ["decisions.log", "decisions.log.1", "decisions.log.2"]
    for name in files:
        assert (tmp_path / name).stat().st_size <= limit
    newest = lines_of(log)
    assert newest and newest[-1]["request_id"] == "r39"


def test_a_folder_that_does_not_exist_is_a_settings_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIXERD_")}
    missing = tmp_path / "nowhere" / "decisions.log"
    done = subprocess.run(
        [sys.executable, "-m", "mixerd", "serve", "--port", "0", "--decision-log", str(missing)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"--decision-log {missing}: no such folder" in done.stderr


def test_stdout_and_the_debug_line_from_mixerd_serve(config: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIXERD_")}
    argv = ["--address", "127.0.0.1", "--port", "0", "--monitoring-port", "0", "--admin-port", "-1"]
    argv += ["--config", str(config), "--decision-log", "stdout", "--log-level", "debug"]
    errors = tmp_path / "stderr"  # a file: a pipe nobody reads could fill with debug lines and block
    with errors.open("w") as stderr_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mixerd", "serve", *argv],
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            text=True,
            env=env,
        )
    try:
        assert proc.stdout is not None
        ready = READY_PATTERN.match(proc.stdout.readline().rstrip("\n"))
        assert ready is not None
        proc.stdout.readline()  # the monitoring line
        address = f"127.0.0.1:{ready.group(3)}"
        mixer_check(address, {"request.id": "from-stdout", "request.headers": {"user-agent": "bot"}})
        record = json.loads(proc.stdout.readline())  # written within the writer's interval
        assert (record["api"], record["request_id"], record["code"]) == (
            "mixer_check",
            "from-stdout",
            "PERMISSION_DENIED",
        )
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    [line] = [line for line in errors.read_text().splitlines() if " mixerd.decisions: " in line]
    assert line.split(" mixerd.decisions: ")[0].endswith("DEBUG")
    assert f"mixer_check PERMISSION_DENIED by {DENIED_BY}: " in line
    assert "[request from-stdout, " in line
