"""Server TLS from PEM files that may be replaced while mixerd runs (cert-manager, SPIFFE helpers).

`TlsFiles` names a certificate chain, its key and, for mTLS, the CA bundle client certificates must
chain to. `ReloadingTls` loads them once (a `TlsError` naming the flag and file when they are unusable)
and then, whenever asked (at each new connection), compares the files' identity (device, inode, mtime,
size, following symlinks, so a Kubernetes Secret's `..data` swap counts) with what it loaded; when they
changed it loads them again. A load that fails keeps the last good material and logs why, once per
version of the files, so a half-finished rotation (new certificate, old key) never takes the port down.

Consumers: `grpc_credentials` (gRPC's dynamic SSL credentials, whose fetcher gRPC calls at every new
connection) and `ReloadingTls.context` (an `ssl.SSLContext` for the monitoring port).
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from dataclasses import dataclass

import grpc

from ..settings import Settings

_log = logging.getLogger(__name__)

#: Identity of each file as (device, inode, mtime ns, size); a file that cannot be stat'ed is its error.
_Signature = tuple[tuple[int, int, int, int] | str, ...]


class TlsError(Exception):
    """The files cannot serve TLS; the message names the flag and the file."""


@dataclass(frozen=True)
class TlsFiles:
    """PEM files serving TLS; `flag` is the flags' common prefix, used in messages ("--tls")."""

    cert: str
    key: str
    client_ca: str | None = None
    flag: str = "--tls"

    def paths(self) -> tuple[str, ...]:
        return (self.cert, self.key) if self.client_ca is None else (self.cert, self.key, self.client_ca)


@dataclass(frozen=True)
class TlsMaterial:
    """One loaded, checked version of the files; `context` is a server context made from them."""

    cert_chain: bytes
    key: bytes
    client_ca: bytes | None
    context: ssl.SSLContext


def from_settings(settings: Settings) -> tuple[ReloadingTls | None, ReloadingTls | None]:
    """The gRPC port's and the monitoring port's TLS, loaded (None for plaintext); TlsError when the
    settings or the files cannot work."""
    grpc_tls, monitoring_tls = grpc_files(settings), monitoring_files(settings)
    return (
        ReloadingTls(grpc_tls) if grpc_tls is not None else None,
        ReloadingTls(monitoring_tls) if monitoring_tls is not None else None,
    )


def grpc_files(settings: Settings) -> TlsFiles | None:
    """The gRPC port's files, or None for plaintext; TlsError for a combination that cannot work."""
    cert, key, client_ca = settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
    if cert is None and key is None:
        if client_ca is not None:
            raise TlsError(
                f"--tls-client-ca-file {client_ca}: client certificates need TLS: "
                "set --tls-cert-file and --tls-key-file too"
            )
        return None
    return TlsFiles(*_pair("--tls", cert, key), client_ca, "--tls")


def monitoring_files(settings: Settings) -> TlsFiles | None:
    """The monitoring port's files, or None for plain HTTP."""
    cert, key = settings.monitoring_tls_cert_file, settings.monitoring_tls_key_file
    if cert is None and key is None:
        return None
    return TlsFiles(*_pair("--monitoring-tls", cert, key), None, "--monitoring-tls")


def _pair(flag: str, cert: str | None, key: str | None) -> tuple[str, str]:
    if cert is None:
        raise TlsError(f"{flag}-key-file {key}: set {flag}-cert-file too (the certificate of this key)")
    if key is None:
        raise TlsError(f"{flag}-cert-file {cert}: set {flag}-key-file too (the key of this certificate)")
    return cert, key


def _signature(files: TlsFiles) -> _Signature:
    out: list[tuple[int, int, int, int] | str] = []
    for path in files.paths():
        try:
            st = os.stat(path)
        except OSError as e:
            out.append(f"{type(e).__name__}: {e.strerror}")
        else:
            out.append((st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(out)


def _read(flag: str, path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise TlsError(f"{flag} {path}: cannot read it: {e.strerror or e}") from None


def _no_password() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key and hang the start.
    return b""


def load(files: TlsFiles) -> TlsMaterial:
    """Read and check the files (TlsError naming the culprit): every certificate parses, the key is the
    certificate's, and the client CA bundle holds certificates."""
    cert_flag, key_flag, ca_flag = (f"{files.flag}-{n}" for n in ("cert-file", "key-file", "client-ca-file"))
    cert = _read(cert_flag, files.cert)
    key = _read(key_flag, files.key)
    client_ca = _read(ca_flag, files.client_ca) if files.client_ca is not None else None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:  # parses every certificate of the chain in memory, so a bad one is blamed on the right file
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=cert.decode("ascii", "replace"))
    except (ssl.SSLError, ValueError):
        raise TlsError(f"{cert_flag} {files.cert}: not a PEM certificate chain") from None
    try:
        context.load_cert_chain(files.cert, files.key, password=_no_password)
    except ssl.SSLError as e:
        what = (
            "is not the key of" if e.reason == "KEY_VALUES_MISMATCH" else "is not an unencrypted PEM key for"
        )
        raise TlsError(f"{key_flag} {files.key}: {what} {cert_flag} {files.cert}") from None
    except OSError as e:  # replaced between the read above and now
        raise TlsError(f"{key_flag} {files.key}: cannot read it: {e.strerror or e}") from None
    if client_ca is not None:
        try:
            context.load_verify_locations(cadata=client_ca.decode("ascii", "replace"))
        except (ssl.SSLError, ValueError):
            raise TlsError(f"{ca_flag} {files.client_ca}: not PEM CA certificates") from None
        context.verify_mode = ssl.CERT_REQUIRED
    return TlsMaterial(cert, key, client_ca, context)


class ReloadingTls:
    """The files' last good material, reloaded when they change (see the module docstring). Thread-safe:
    gRPC asks from its own threads, the monitoring server from its loop."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self._lock = threading.Lock()
        self._seen = _signature(files)
        self.material = load(files)  # TlsError at start: there is nothing good to fall back on

    def refresh(self) -> TlsMaterial:
        """The material in force, after loading the files again if they changed since last seen."""
        with self._lock:
            seen = _signature(self.files)
            if seen == self._seen:
                return self.material
            self._seen = seen  # one try per version of the files, so a broken one is logged once
            try:
                material = load(self.files)
            except TlsError as e:
                _log.warning("tls: the files changed but cannot be used; keeping the last good ones: %s", e)
                return self.material
            if _signature(self.files) != seen:  # changed again while being read: load once more next time
                self._seen = ()
            self.material = material
            flag, cert = self.files.flag, self.files.cert
            _log.info("tls: %s-cert-file %s and its key reloaded for new connections", flag, cert)
            return material

    def describe(self) -> str:
        """How the port is secured, for the log."""
        clients = "client certificates required (mTLS)" if self.files.client_ca else "no client certificates"
        return f"TLS with {self.files.cert}, {clients}; the files are re-read when they change"

    def context(self) -> ssl.SSLContext:
        """An `ssl.SSLContext` for the next connection."""
        return self.refresh().context


class _GrpcFetcher:
    """gRPC's certificate-configuration fetcher, called at each new connection: a new configuration when
    the files changed since the last one given, else None (keep it). Never raises: that fails the
    handshake."""

    def __init__(self, tls: ReloadingTls) -> None:
        self._tls = tls
        self._given = tls.material

    def __call__(self) -> grpc.ServerCertificateConfiguration | None:
        try:
            material = self._tls.refresh()
        except Exception:
            _log.exception(
                "tls: checking %s for changes failed; keeping the one in use", self._tls.files.cert
            )
            return None
        if material is self._given:
            return None
        self._given = material
        return _grpc_config(material)


def _grpc_config(material: TlsMaterial) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration(
        [(material.key, material.cert_chain)], root_certificates=material.client_ca
    )


def grpc_credentials(tls: ReloadingTls) -> grpc.ServerCredentials:
    """Server credentials serving `tls`'s material and picking up new files for new connections; client
    certificates are required (and checked against the client CA) when the files name one."""
    return grpc.dynamic_ssl_server_credentials(
        _grpc_config(tls.material),
        _GrpcFetcher(tls),
        require_client_authentication=tls.files.client_ca is not None,
    )
