"""TLS and mTLS on the gRPC port and HTTPS on the monitoring port, over real sockets: real gRPC and ssl
clients, certificates made at test time (tests/peers/certs.py), rotation without a restart, bad settings."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from peers.certs import Issued, TestPki

from mixerd import cli
from mixerd.api.mixer.v1 import mixer_pb2, mixer_pb2_grpc
from mixerd.server.app import READY_PATTERN, ConfigError, start
from mixerd.settings import Settings

pytestmark = pytest.mark.integration

Start = Callable[..., Any]


def mixer_check(address: str, credentials: grpc.ChannelCredentials | None, **options: str) -> int:
    """One Mixer Check over a new channel; the precondition code (an RpcError when the call fails)."""
    if credentials is None:
        channel = grpc.insecure_channel(address)
    else:
        channel = grpc.secure_channel(address, credentials, options=list(options.items()))
    with channel:
        answer = mixer_pb2_grpc.MixerStub(channel).Check(mixer_pb2.CheckRequest(), timeout=5)
    return int(answer.precondition.status.code)


def client_credentials(pki: TestPki, client: Issued | None = None) -> grpc.ChannelCredentials:
    if client is None:
        return grpc.ssl_channel_credentials(pki.ca.cert.read_bytes())
    return grpc.ssl_channel_credentials(
        pki.ca.cert.read_bytes(), client.key.read_bytes(), client.cert.read_bytes()
    )


def refused(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    return info.value


def peer_certificate(port: int, ca: Path, client: Issued | None = None, *, alpn: str | None = "h2") -> bytes:
    """The DER certificate a new TLS connection to 127.0.0.1:port is shown (ssl, not gRPC)."""
    context = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    if alpn is not None:
        context.set_alpn_protocols([alpn])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def handshake_refused(port: int, ca: Path, client: Issued | None = None) -> bool:
    """Whether the server ends a TLS connection at once (with TLS 1.3 the client's side of the handshake
    completes before the server has checked the client's certificate: its refusal comes on first read)."""
    context = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    context.set_alpn_protocols(["h2"])
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")  # HTTP/2's preface: a served one answers
            return tls.recv(1) == b""
    except (ssl.SSLError, ConnectionError):
        return True


def tls_settings(pki: TestPki, **more: Any) -> dict[str, Any]:
    return {"tls_cert_file": str(pki.server.cert), "tls_key_file": str(pki.server.key), **more}


def copy_issued(issued: Issued, folder: Path, name: str = "tls") -> Issued:
    folder.mkdir(parents=True, exist_ok=True)
    copy = Issued(folder / f"{name}.crt", folder / f"{name}.key")
    replace_files(copy, issued)
    return copy


def replace_files(target: Issued, source: Issued) -> None:
    """Replace the target's certificate, then its key, each at once (rename), as a careful copy does."""
    for src, dst in ((source.cert, target.cert), (source.key, target.key)):
        temporary = dst.with_suffix(".new")
        shutil.copyfile(src, temporary)
        os.replace(temporary, dst)


# -- TLS ---------------------------------------------------------------------------------------------------


def test_a_client_trusting_the_ca_checks_over_tls(start_mixer_server: Start, pki: TestPki) -> None:
    server = start_mixer_server(**tls_settings(pki))
    assert mixer_check(server.address, client_credentials(pki)) == 0
    assert mixer_check(f"localhost:{server.port}", client_credentials(pki)) == 0
    assert peer_certificate(server.port, pki.ca.cert) == pki.server.der()


def test_a_plaintext_client_cannot_talk_to_a_tls_server(start_mixer_server: Start, pki: TestPki) -> None:
    server = start_mixer_server(**tls_settings(pki))
    refused(lambda: mixer_check(server.address, None))


def test_a_client_that_does_not_trust_the_ca_refuses_the_server(
    start_mixer_server: Start, pki: TestPki
) -> None:
    server = start_mixer_server(**tls_settings(pki))
    other = grpc.ssl_channel_credentials(pki.other_ca.cert.read_bytes())
    refused(lambda: mixer_check(server.address, other))


def test_without_a_client_ca_no_client_certificate_is_asked(start_mixer_server: Start, pki: TestPki) -> None:
    server = start_mixer_server(**tls_settings(pki))
    assert mixer_check(server.address, client_credentials(pki, pki.stranger)) == 0


# -- mTLS --------------------------------------------------------------------------------------------------


def test_mtls_answers_a_client_certificate_signed_by_the_client_ca(
    start_mixer_server: Start, pki: TestPki
) -> None:
    server = start_mixer_server(**tls_settings(pki, tls_client_ca_file=str(pki.ca.cert)))
    assert mixer_check(server.address, client_credentials(pki, pki.client)) == 0


def test_mtls_refuses_a_client_without_a_certificate(start_mixer_server: Start, pki: TestPki) -> None:
    server = start_mixer_server(**tls_settings(pki, tls_client_ca_file=str(pki.ca.cert)))
    refused(lambda: mixer_check(server.address, client_credentials(pki)))
    assert handshake_refused(server.port, pki.ca.cert)


def test_mtls_refuses_a_client_certificate_of_another_ca(start_mixer_server: Start, pki: TestPki) -> None:
    server = start_mixer_server(**tls_settings(pki, tls_client_ca_file=str(pki.ca.cert)))
    refused(lambda: mixer_check(server.address, client_credentials(pki, pki.stranger)))
    assert handshake_refused(server.port, pki.ca.cert, pki.stranger)
    assert not handshake_refused(server.port, pki.ca.cert, pki.client)


# -- rotation ----------------------------------------------------------------------------------------------


def test_replaced_files_serve_new_connections_without_a_restart(
    start_mixer_server: Start, pki: TestPki, tmp_path: Path
) -> None:
    served = copy_issued(pki.server, tmp_path / "tls")
    server = start_mixer_server(tls_cert_file=str(served.cert), tls_key_file=str(served.key))
    old_channel = grpc.secure_channel(server.address, client_credentials(pki))
    try:
        stub = mixer_pb2_grpc.MixerStub(old_channel)
        stub.Check(mixer_pb2.CheckRequest(), timeout=5)
        assert peer_certificate(server.port, pki.ca.cert) == pki.server.der()

        renewed = pki.ca.issue("server-renewed")
        replace_files(served, renewed)
        assert peer_certificate(server.port, pki.ca.cert) == renewed.der()
        assert peer_certificate(server.port, pki.ca.cert) == renewed.der()
        assert mixer_check(server.address, client_credentials(pki)) == 0
        stub.Check(mixer_pb2.CheckRequest(), timeout=5)  # the connection made before still serves
    finally:
        old_channel.close()
    assert not server.running._stopped


def test_a_kubernetes_secret_swap_is_picked_up(
    start_mixer_server: Start, pki: TestPki, tmp_path: Path
) -> None:
    # A Secret volume: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>/; an update swaps ..data.
    volume = tmp_path / "secret"
    copy_issued(pki.server, volume / "..v1")
    (volume / "..data").symlink_to("..v1")
    for name in ("tls.crt", "tls.key"):
        (volume / name).symlink_to(f"..data/{name}")
    server = start_mixer_server(tls_cert_file=str(volume / "tls.crt"), tls_key_file=str(volume / "tls.key"))
    assert peer_certificate(server.port, pki.ca.cert) == pki.server.der()

    renewed = pki.ca.issue("server-from-secret")
    copy_issued(renewed, volume / "..v2")
    (volume / "..data_tmp").symlink_to("..v2")
    os.replace(volume / "..data_tmp", volume / "..data")
    assert peer_certificate(server.port, pki.ca.cert) == renewed.der()


def test_a_rotation_to_a_broken_file_keeps_the_last_good_certificate(
    start_mixer_server: Start, pki: TestPki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    served = copy_issued(pki.server, tmp_path / "tls")
    server = start_mixer_server(tls_cert_file=str(served.cert), tls_key_file=str(served.key))
    caplog.set_level(logging.INFO, logger="mixerd.server.tls")

    served.cert.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    for _ in range(3):
        assert peer_certificate(server.port, pki.ca.cert) == pki.server.der()
        assert mixer_check(server.address, client_credentials(pki)) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [  # once, however many connections saw it
        "tls: the files changed but cannot be used; keeping the last good ones: "
        f"--tls-cert-file {served.cert}: not a PEM certificate chain"
    ]

    renewed = pki.ca.issue("server-half-rotated")
    shutil.copyfile(renewed.cert, served.cert)  # the new certificate with the old key: not usable yet
    assert peer_certificate(server.port, pki.ca.cert) == pki.server.der()
    assert (
        caplog.records[-1]
        .getMessage()
        .endswith(f"--tls-key-file {served.key}: is not the key of --tls-cert-file {served.cert}")
    )
    shutil.copyfile(renewed.key, served.key)
    assert peer_certificate(server.port, pki.ca.cert) == renewed.der()
    assert caplog.records[-1].getMessage() == (
        f"tls: --tls-cert-file {served.cert} and its key reloaded for new connections"
    )


def test_a_rotated_client_ca_applies_to_new_connections(
    start_mixer_server: Start, pki: TestPki, tmp_path: Path
) -> None:
    client_ca = tmp_path / "client-ca.crt"
    shutil.copyfile(pki.ca.cert, client_ca)
    server = start_mixer_server(**tls_settings(pki, tls_client_ca_file=str(client_ca)))
    refused(lambda: mixer_check(server.address, client_credentials(pki, pki.stranger)))
    client_ca.write_bytes(pki.ca.cert.read_bytes() + pki.other_ca.cert.read_bytes())
    assert mixer_check(server.address, client_credentials(pki, pki.stranger)) == 0
    assert mixer_check(server.address, client_credentials(pki, pki.client)) == 0


# -- monitoring over HTTPS ------------------------------------------------------------------------------


def https_get(url: str, ca: Path) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_the_monitoring_port_serves_https_with_its_own_files(
    start_mixer_server: Start, pki: TestPki, tmp_path: Path
) -> None:
    served = copy_issued(pki.server, tmp_path / "monitoring")
    server = start_mixer_server(
        monitoring_tls_cert_file=str(served.cert), monitoring_tls_key_file=str(served.key)
    )
    assert server.monitoring_url == f"https://127.0.0.1:{server.monitoring_port}"
    assert https_get(server.monitoring_url + "/readyz", pki.ca.cert) == (200, b"ok\n")
    assert https_get(server.monitoring_url + "/metrics", pki.ca.cert)[0] == 200
    assert peer_certificate(server.monitoring_port, pki.ca.cert, alpn=None) == pki.server.der()
    with pytest.raises((ConnectionError, urllib.error.URLError)):  # plain HTTP gets no answer
        urllib.request.urlopen(f"http://127.0.0.1:{server.monitoring_port}/healthz", timeout=5)
    assert mixer_check(server.address, None) == 0  # gRPC stays plaintext

    renewed = pki.ca.issue("monitoring-renewed")
    replace_files(served, renewed)
    assert peer_certificate(server.monitoring_port, pki.ca.cert, alpn=None) == renewed.der()
    assert https_get(server.monitoring_url + "/healthz", pki.ca.cert) == (200, b"ok\n")


def test_a_slow_tls_handshake_is_cut_like_slow_headers(start_mixer_server: Start, pki: TestPki) -> None:
    server = start_mixer_server(
        monitoring_tls_cert_file=str(pki.server.cert), monitoring_tls_key_file=str(pki.server.key)
    )
    with socket.create_connection(("127.0.0.1", server.monitoring_port)) as silent:
        silent.settimeout(20)
        assert silent.recv(1024) == b""  # closed after the header timeout, no handshake ever started


def test_the_ready_lines_still_parse_with_tls(start_mixer_server: Start, pki: TestPki) -> None:
    server = start_mixer_server(
        **tls_settings(pki, tls_client_ca_file=str(pki.ca.cert)),
        monitoring_tls_cert_file=str(pki.server.cert),
        monitoring_tls_key_file=str(pki.server.key),
    )
    grpc_line, monitoring_line, admin_line = server.running.ready_lines()
    assert monitoring_line == f"mixerd: monitoring on https://127.0.0.1:{server.monitoring_port}"
    assert admin_line == f"mixerd: admin on http://127.0.0.1:{server.running.admin_port}"  # local, no TLS
    ports = ((grpc_line, server.port), (monitoring_line, server.monitoring_port))
    for line, port in (*ports, (admin_line, server.running.admin_port)):
        match = READY_PATTERN.match(line)
        assert match is not None and match.group(2, 3) == ("127.0.0.1", str(port))


def test_mixerd_serve_with_tls_prints_parsable_ready_lines_and_logs_the_tls(pki: TestPki) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIXERD_")}
    cert, key, ca = str(pki.server.cert), str(pki.server.key), str(pki.ca.cert)
    command = [sys.executable, "-m", "mixerd", "serve", "--address", "127.0.0.1", "--port", "0"]
    command += ["--monitoring-port", "0", "--admin-port", "0", "--tls-cert-file", cert, "--tls-key-file", key]
    command += ["--tls-client-ca-file", ca]
    command += ["--monitoring-tls-cert-file", cert, "--monitoring-tls-key-file", key]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().rstrip("\n") for _ in range(2)]
        grpc_ready, monitoring_ready = (READY_PATTERN.match(line) for line in lines)
        assert grpc_ready is not None and monitoring_ready is not None, lines
        assert lines[1].startswith("mixerd: monitoring on https://127.0.0.1:")
        address = f"127.0.0.1:{grpc_ready.group(3)}"
        assert mixer_check(address, client_credentials(pki, pki.client)) == 0
        url = f"https://127.0.0.1:{monitoring_ready.group(3)}/readyz"
        assert https_get(url, pki.ca.cert) == (200, b"ok\n")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    reread = "the files are re-read when they change"
    assert f"gRPC on {address}: TLS with {cert}, client certificates required (mTLS); {reread}" in err
    assert f"monitoring: TLS with {cert}, no client certificates; {reread}" in err


# -- bad settings ---------------------------------------------------------------------------------------


def _bad_settings(pki: TestPki, tmp_path: Path) -> list[tuple[dict[str, str], str]]:
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    cert, key, ca = str(pki.server.cert), str(pki.server.key), str(pki.ca.cert)
    missing = str(tmp_path / "missing.pem")
    return [
        (
            {"tls_cert_file": cert},
            f"--tls-cert-file {cert}: set --tls-key-file too (the key of this certificate)",
        ),
        (
            {"tls_key_file": key},
            f"--tls-key-file {key}: set --tls-cert-file too (the certificate of this key)",
        ),
        (
            {"tls_client_ca_file": ca},
            f"--tls-client-ca-file {ca}: client certificates need TLS: "
            "set --tls-cert-file and --tls-key-file too",
        ),
        (
            {"tls_cert_file": missing, "tls_key_file": key},
            f"--tls-cert-file {missing}: cannot read it: No such file or directory",
        ),
        (
            {"tls_cert_file": str(junk), "tls_key_file": key},
            f"--tls-cert-file {junk}: not a PEM certificate chain",
        ),
        (
            {"tls_cert_file": cert, "tls_key_file": str(junk)},
            f"--tls-key-file {junk}: is not an unencrypted PEM key for --tls-cert-file {cert}",
        ),
        (
            {"tls_cert_file": cert, "tls_key_file": str(pki.client.key)},
            f"--tls-key-file {pki.client.key}: is not the key of --tls-cert-file {cert}",
        ),
        (
            {"tls_cert_file": cert, "tls_key_file": key, "tls_client_ca_file": str(junk)},
            f"--tls-client-ca-file {junk}: not PEM CA certificates",
        ),
        (
            {"monitoring_tls_cert_file": cert},
            f"--monitoring-tls-cert-file {cert}: "
            "set --monitoring-tls-key-file too (the key of this certificate)",
        ),
        (
            {"monitoring_tls_cert_file": cert, "monitoring_tls_key_file": str(pki.client.key)},
            f"--monitoring-tls-key-file {pki.client.key}: "
            f"is not the key of --monitoring-tls-cert-file {cert}",
        ),
    ]


def test_bad_tls_settings_stop_the_start_naming_the_flag_and_file(
    pki: TestPki, tmp_path: Path, start_mixer_server: Start
) -> None:
    for overrides, message in _bad_settings(pki, tmp_path):
        with pytest.raises(ConfigError) as info:
            start_mixer_server(**overrides)
        assert str(info.value) == message
        assert info.value.exit_code == 2


def test_a_key_that_cannot_be_read_is_named(pki: TestPki, tmp_path: Path, start_mixer_server: Start) -> None:
    # A folder where the file should be (running as root, a chmod 000 file would still be readable).
    with pytest.raises(ConfigError) as info:
        start_mixer_server(tls_cert_file=str(pki.server.cert), tls_key_file=str(tmp_path))
    assert str(info.value) == f"--tls-key-file {tmp_path}: cannot read it: Is a directory"


def test_mixerd_serve_exits_2_with_the_message(
    pki: TestPki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert, junk = str(pki.server.cert), tmp_path / "junk.key"
    junk.write_text("nope\n")
    argv = ["serve", "--address", "127.0.0.1", "--port", "0", "--monitoring-port", "0"]
    assert cli.main([*argv, "--tls-cert-file", cert, "--tls-key-file", str(junk)]) == 2
    assert capsys.readouterr().err == (
        f"mixerd serve: error: --tls-key-file {junk}: "
        f"is not an unencrypted PEM key for --tls-cert-file {cert}\n"
    )


def test_the_settings_come_from_the_environment_too(pki: TestPki) -> None:
    parser = cli.build_parser()
    environ = {"MIXERD_TLS_CERT_FILE": str(pki.server.cert), "MIXERD_TLS_CLIENT_CA_FILE": str(pki.ca.cert)}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environ.items():
            patch.setenv(name, value)
        parser = cli.build_parser()
    args = parser.parse_args(["serve", "--tls-key-file", str(pki.server.key)])
    assert (args.tls_cert_file, args.tls_key_file, args.tls_client_ca_file) == (
        str(pki.server.cert),
        str(pki.server.key),
        str(pki.ca.cert),
    )


def test_an_encrypted_key_is_refused_without_prompting(pki: TestPki, tmp_path: Path) -> None:
    encrypted = tmp_path / "encrypted.key"
    subprocess.run(
        [
            "openssl",
            "pkey",
            "-in",
            str(pki.server.key),
            "-aes256",
            "-passout",
            "pass:x",
            "-out",
            str(encrypted),
        ],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    settings = Settings(tls_cert_file=str(pki.server.cert), tls_key_file=str(encrypted))
    with pytest.raises(ConfigError, match="is not an unencrypted PEM key"):
        asyncio.run(start(settings))  # fails before binding anything


# -- mixerd check / report --------------------------------------------------------------------------------


def run_cli(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_checks_and_reports_over_mtls(
    start_mixer_server: Start, pki: TestPki, capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_mixer_server(**tls_settings(pki, tls_client_ca_file=str(pki.ca.cert)))
    client = ["--tls-ca-file", str(pki.ca.cert), "--tls-cert-file", str(pki.client.cert)]
    client += ["--tls-key-file", str(pki.client.key)]
    code, out, _ = run_cli("check", "-m", server.address, *client, "--json", capsys=capsys)
    assert (code, json.loads(out)["code"]) == (0, "OK")
    code, out, _ = run_cli("report", "-m", f"localhost:{server.port}", *client, "--json", capsys=capsys)
    assert (code, json.loads(out)) == (0, {"code": "OK", "message": "", "bags": 1})

    code, _, err = run_cli("check", "-m", server.address, "--tls-ca-file", str(pki.ca.cert), capsys=capsys)
    assert code == 1 and err.startswith("rpc error: code = UNAVAILABLE")  # no client certificate
    code, _, err = run_cli("check", "-m", server.address, capsys=capsys)
    assert code == 1 and err.startswith("rpc error: code = UNAVAILABLE")  # plaintext


def test_the_cli_trusts_the_system_cas_with_tls_alone(
    start_mixer_server: Start, pki: TestPki, capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_mixer_server(**tls_settings(pki))
    code, _, err = run_cli("check", "-m", server.address, "--tls", capsys=capsys)
    assert code == 1 and err.startswith("rpc error: code = UNAVAILABLE")  # the test CA is no system CA


def test_the_cli_expects_the_server_name_given(
    start_mixer_server: Start, pki: TestPki, capsys: pytest.CaptureFixture[str]
) -> None:
    named = pki.ca.issue("mixerd-svc", sans=("DNS:mixerd.example.svc",))
    server = start_mixer_server(tls_cert_file=str(named.cert), tls_key_file=str(named.key))
    ca = ["--tls-ca-file", str(pki.ca.cert)]
    code, _, err = run_cli("check", "-m", server.address, *ca, capsys=capsys)
    assert code == 1 and err.startswith("rpc error: code = UNAVAILABLE")  # 127.0.0.1 is not in the cert
    code, out, _ = run_cli(
        "check", "-m", server.address, *ca, "--tls-server-name", "mixerd.example.svc", "--json", capsys=capsys
    )
    assert (code, json.loads(out)["code"]) == (0, "OK")


WITH_ITS_KEY = "(a client certificate goes with its key)"


def test_bad_cli_tls_flags_are_usage_errors_naming_the_file(
    pki: TestPki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    cert, key, missing = str(pki.client.cert), str(pki.client.key), str(tmp_path / "missing.pem")
    cases = [
        (["--tls-cert-file", cert], f"--tls-cert-file needs --tls-key-file too {WITH_ITS_KEY}"),
        (["--tls-key-file", key], f"--tls-key-file needs --tls-cert-file too {WITH_ITS_KEY}"),
        (["--tls-ca-file", missing], f"--tls-ca-file {missing}: cannot read it: No such file or directory"),
        (["--tls-ca-file", str(junk)], f"--tls-ca-file {junk}: not PEM certificates"),
        (
            ["--tls-cert-file", cert, "--tls-key-file", str(pki.server.key)],
            f"--tls-key-file {pki.server.key}: not an unencrypted PEM key of --tls-cert-file {cert}",
        ),
    ]
    for command in ("check", "report"):
        for flags, message in cases:
            code, out, err = run_cli(command, "-m", "127.0.0.1:1", *flags, capsys=capsys)
            assert (code, out, err) == (2, "", f"mixerd {command}: error: {message}\n")


def test_docs_cli_lists_every_tls_flag_of_the_client() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    section = doc[doc.index("### TLS") :].split("\n## ")[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `--tls")]
    documented = {flag for row in rows for flag in re.findall(r"`(--tls[a-z-]*)", row)}
    for command in ("check", "report"):
        parser = cli.build_parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
        flags = {option for action in parser._actions for option in action.option_strings}
        assert {flag for flag in flags if flag.startswith("--tls")} == documented
