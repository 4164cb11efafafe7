"""mixerd installed the way users install it: deploy/Dockerfile's own pip commands, run into a fresh venv.

Nothing of the development venv is used: the wheel is built from the files the Dockerfile copies, with
the Dockerfile's `pip wheel` line, and installed with its `pip install` line (plain pip, dependencies
from the package index, no repair step, no editable install). Then the installed `mixerd` serves every
API once, checks a config that uses every built-in adapter, and describes itself.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import urllib.request
import venv
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from peers.wheels import dockerfile_context, dockerfile_pip_commands

from mixerd.api.envoy.data.accesslog.v3 import accesslog_pb2
from mixerd.api.envoy.service.accesslog.v3 import als_pb2
from mixerd.api.envoy.service.auth.v3 import external_auth_pb2
from mixerd.api.envoy.service.ratelimit.v3 import rls_pb2
from mixerd.api.mixer.v1 import mixer_pb2, mixer_pb2_grpc
from mixerd.attribute import encode_attributes, encode_report
from mixerd.server.app import READY_PATTERN, served_services

# The first test also builds the wheels and installs the venv: minutes on a busy machine.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

Lines = queue.Queue[str]
EVERY_ADAPTER = Path(__file__).resolve().parents[1] / "data" / "config" / "good" / "every_builtin_adapter"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with mixerd installed by deploy/Dockerfile's pip commands; its bin/ folder."""
    scratch = tmp_path_factory.mktemp("install")
    context = dockerfile_context(scratch / "src")
    venv.create(scratch / "venv", with_pip=True)
    bin_dir = scratch / "venv" / "bin"
    # `pip` is the fresh venv's; nothing of this process's environment leaks in.
    env = {**_clean_environment(), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    commands = dockerfile_pip_commands()
    assert [c.split()[:2] for c in commands] == [["pip", "wheel"], ["pip", "install"]]
    for command in commands:
        command = command.replace("/wheels", str(scratch / "wheels"))
        done = subprocess.run(
            command, shell=True, cwd=context, env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return bin_dir


def _clean_environment() -> dict[str, str]:
    """This process's environment without what would point a child at the development checkout."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    return {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("MIXERD_")}


def _run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "mixerd"), *args],
        cwd=cwd,
        env=_clean_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_no_two_installed_packages_share_a_file(installed: Path) -> None:
    """Whatever order pip installs them in, no dependency can overwrite another's files (xds-protos once
    shipped opentelemetry-proto's modules)."""
    script = """
import collections, importlib.metadata as m, json
owners = collections.defaultdict(set)
for dist in m.distributions():
    for f in dist.files or ():
        if f.suffix in (".py", ".pyi", ".so") and ".dist-info" not in str(f) and "__pycache__" not in str(f):
            owners[str(f)].add(dist.metadata["Name"])
print(json.dumps({f: sorted(o) for f, o in owners.items() if len(o) > 1}))
"""
    done = subprocess.run(
        [str(installed / "python"), "-c", script],
        env=_clean_environment(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(done.stdout) == {}


def test_the_installed_package_is_the_wheels(installed: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(installed / "python"), "-c", "import mixerd, mixerd_adapters; print(mixerd.__file__)"],
        cwd=tmp_path,
        env=_clean_environment(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert Path(done.stdout.strip()).is_relative_to(installed.parent)


@pytest.fixture(scope="module")
def served(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Lines]]:
    """The installed `mixerd serve` on its embedded defaults (free ports, loopback): its gRPC address and
    the rest of its stdout, line by line (the default rules log each reported request there)."""
    cwd = tmp_path_factory.mktemp("cwd")
    args = ["serve", "--port", "0", "--monitoring-port", "0", "--admin-port", "0", "--address", "127.0.0.1"]
    proc = subprocess.Popen(
        [str(installed / "mixerd"), *args],
        cwd=cwd,
        env=_clean_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().rstrip("\n")
        ready = READY_PATTERN.match(line)
        if ready is None:
            proc.kill()
            _, stderr = proc.communicate(timeout=10)
            pytest.fail(f"the installed mixerd did not start: {line!r}\n{stderr[-3000:]}")
        assert served_services(ready.group(1)) == [
            "istio.mixer.v1.Mixer",
            "envoy.service.auth.v3.Authorization",
            "envoy.service.ratelimit.v3.RateLimitService",
            "envoy.service.accesslog.v3.AccessLogService",
        ]
        assert proc.stdout.readline().startswith("mixerd: monitoring on ")
        admin = READY_PATTERN.match(proc.stdout.readline().rstrip("\n"))
        assert admin is not None and admin.group(1, 2) == ("admin", "127.0.0.1")
        # The admin page's views ship in the wheel and answer (their JSON twin of the config in force).
        with urllib.request.urlopen(f"http://127.0.0.1:{admin.group(3)}/debug/config", timeout=10) as answer:
            assert json.load(answer)["generation"] == 1
        lines: Lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
        yield f"127.0.0.1:{ready.group(3)}", lines
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0


def _next_log_entry(lines: Lines) -> dict[str, object]:
    """The next JSON access-log line the default rules print for a reported request."""
    while True:
        try:
            line = lines.get(timeout=20)
        except queue.Empty:
            raise AssertionError("mixerd printed no access-log line within 20 s") from None
        if line.startswith("{"):
            entry: dict[str, object] = json.loads(line)
            return entry


def test_mixer_check_and_report(served: tuple[str, Lines]) -> None:
    address, stdout = served
    with grpc.insecure_channel(address) as channel:
        mixer = mixer_pb2_grpc.MixerStub(channel)
        bag = {"request.path": "/installed/check", "destination.service.host": "reviews"}
        check = mixer.Check(mixer_pb2.CheckRequest(attributes=encode_attributes(bag)), timeout=10)
        assert (check.precondition.status.code, check.precondition.valid_use_count) == (0, 10000)
        mixer.Report(encode_report([{"request.path": "/installed/report", "response.code": 200}]), timeout=10)
    assert _next_log_entry(stdout)["url"] == "/installed/report"


def test_envoy_ext_authz_check(served: tuple[str, Lines]) -> None:
    address, _ = served
    request = external_auth_pb2.CheckRequest()
    request.attributes.request.http.method = "GET"
    request.attributes.request.http.path = "/installed/authz"
    with grpc.insecure_channel(address) as channel:
        check = channel.unary_unary(
            "/envoy.service.auth.v3.Authorization/Check",
            request_serializer=external_auth_pb2.CheckRequest.SerializeToString,
            response_deserializer=external_auth_pb2.CheckResponse.FromString,
        )
        answer = check(request, timeout=10)
    assert answer.status.code == 0 and answer.HasField("ok_response")


def test_envoy_should_rate_limit(served: tuple[str, Lines]) -> None:
    address, _ = served
    request = rls_pb2.RateLimitRequest(domain="edge")
    request.descriptors.add().entries.add(key="remote_address", value="10.0.0.1")
    with grpc.insecure_channel(address) as channel:
        should = channel.unary_unary(
            "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit",
            request_serializer=rls_pb2.RateLimitRequest.SerializeToString,
            response_deserializer=rls_pb2.RateLimitResponse.FromString,
        )
        answer = should(request, timeout=10)
    assert answer.overall_code == rls_pb2.RateLimitResponse.OK
    assert [s.code for s in answer.statuses] == [rls_pb2.RateLimitResponse.OK]


def test_envoy_access_log_stream(served: tuple[str, Lines]) -> None:
    address, stdout = served
    message = als_pb2.StreamAccessLogsMessage()
    message.identifier.node.id = "sidecar~10.1.2.3~installed.default~default.svc.cluster.local"
    message.identifier.log_name = "installed"
    entry = accesslog_pb2.HTTPAccessLogEntry()
    entry.common_properties.downstream_remote_address.socket_address.address = "10.1.2.4"
    entry.common_properties.start_time.FromSeconds(1_800_000_000)
    entry.request.path = "/installed/accesslog"
    entry.response.response_code.value = 204
    message.http_logs.log_entry.append(entry)
    with grpc.insecure_channel(address) as channel:
        stream = channel.stream_unary(
            "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs",
            request_serializer=als_pb2.StreamAccessLogsMessage.SerializeToString,
            response_deserializer=als_pb2.StreamAccessLogsResponse.FromString,
        )
        assert stream(iter([message]), timeout=10) == als_pb2.StreamAccessLogsResponse()
    logged = _next_log_entry(stdout)
    assert (logged["url"], logged["responseCode"]) == ("/installed/accesslog", 204)


def test_check_config_loads_every_built_in_adapter(installed: Path, tmp_path: Path) -> None:
    done = _run(installed, "check-config", str(EVERY_ADAPTER), cwd=tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (EVERY_ADAPTER / "expected.txt").read_text()


def test_version_lists_every_built_in_adapter(installed: Path, tmp_path: Path) -> None:
    done = _run(installed, "version", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    names = {a["name"] for a in answer["adapters"] if a["builtin"]}
    assert {"denier", "listchecker", "memquota", "redisquota", "prometheus", "statsd", "stdio"} <= names
    assert {"fluentd", "otlp", "zipkin", "kubernetesenv", "noop"} <= names


def test_a_bundled_example_copied_from_the_installed_package_checks(installed: Path, tmp_path: Path) -> None:
    copied = _run(installed, "examples", "deny-by-header", "my-rules", cwd=tmp_path)
    assert copied.returncode == 0, copied.stderr
    checked = _run(installed, "check-config", "my-rules", cwd=tmp_path)
    assert (checked.returncode, checked.stdout.split(",")[0]) == (0, "valid: 1 rule")
