"""TLS for the CLI client's channel: which CA to trust, which certificate to present (mTLS), which name to
expect, read from PEM files and checked before any call so that a wrong file is a usage error naming it."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import grpc


class TlsFlagError(Exception):
    """The TLS flags cannot work; the message names the flag and file."""


@dataclass(frozen=True)
class ClientTls:
    """`ca` None trusts the system's CA certificates; `cert`/`key` are both set or both None."""

    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None
    server_name: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )

    def options(self) -> list[tuple[str, str]]:
        # gRPC checks the certificate against this name, and sends it as SNI, instead of the target's host.
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []


def client_tls(
    tls: bool,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
    server_name: str | None = None,
) -> ClientTls | None:
    """What the flags ask for; None for plaintext (no flag given). Any file flag implies TLS."""
    if not (tls or ca_file or cert_file or key_file or server_name):
        return None
    if (cert_file is None) != (key_file is None):
        given, missing = ("--tls-cert-file", "--tls-key-file")[:: 1 if cert_file else -1]
        raise TlsFlagError(f"{given} needs {missing} too (a client certificate goes with its key)")
    ca = _certificates("--tls-ca-file", ca_file) if ca_file else None
    cert = key = None
    if cert_file and key_file:
        cert = _certificates("--tls-cert-file", cert_file)
        key = _read("--tls-key-file", key_file)
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert_file, key_file, password=lambda: b"")
        except (ssl.SSLError, OSError):
            raise TlsFlagError(
                f"--tls-key-file {key_file}: not an unencrypted PEM key of --tls-cert-file {cert_file}"
            ) from None
    return ClientTls(ca, cert, key, server_name)


def _read(flag: str, path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise TlsFlagError(f"{flag} {path}: cannot read it: {e.strerror or e}") from None


def _certificates(flag: str, path: str) -> bytes:
    data = _read(flag, path)
    try:  # parses every certificate in memory
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=data.decode("ascii", "replace"))
    except (ssl.SSLError, ValueError):
        raise TlsFlagError(f"{flag} {path}: not PEM certificates") from None
    return data
