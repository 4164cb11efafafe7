"""Certificates for TLS tests, made at test time with the `openssl` command (never committed).

`CertificateAuthority(folder, name)` writes a self-signed CA (`cert`, `key`); `issue(name)` signs a leaf
certificate good for both server and client use, with the subject alternative names `localhost` and
`127.0.0.1` by default, and returns its files (`Issued`: `cert`, `key`, `der()` for comparing with what a
TLS peer presents). Keys are P-256 (fast to make); certificates last a day.

`TestPki` is the set most tests share: a CA, a server and a client certificate it signs, and a client
certificate signed by another CA (which the server must refuse).
"""

from __future__ import annotations

import secrets
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


def _openssl(*args: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is needed to make test certificates")
    subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60)


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as PEM files."""

    cert: Path
    key: Path

    def der(self) -> bytes:
        """The certificate in DER, as `ssl.SSLSocket.getpeercert(binary_form=True)` gives it."""
        return ssl.PEM_cert_to_DER_cert(self.cert.read_text())


class CertificateAuthority:
    """A self-signed CA in `folder` (`<name>.crt`, `<name>.key`) that issues leaf certificates."""

    def __init__(self, folder: Path, name: str = "test-ca") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.cert = folder / f"{name}.crt"
        self.key = folder / f"{name}.key"
        _openssl(
            "req", "-x509", *_EC, "-keyout", str(self.key), "-out", str(self.cert), "-days", "1",
            "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip

    def issue(self, name: str, sans: tuple[str, ...] = ("DNS:localhost", "IP:127.0.0.1")) -> Issued:
        """A new key and certificate `<name>.crt` / `<name>.key` in the CA's folder (replacing any)."""
        cert, key = self.folder / f"{name}.crt", self.folder / f"{name}.key"
        request, extensions = self.folder / f"{name}.csr", self.folder / f"{name}.ext"
        extensions.write_text(
            f"subjectAltName={','.join(sans)}\n"
            "basicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth,clientAuth\n"
        )
        _openssl("req", "-new", *_EC, "-keyout", str(key), "-out", str(request), "-subj", f"/CN={name}")
        _openssl(
            "x509", "-req", "-in", str(request), "-CA", str(self.cert), "-CAkey", str(self.key),
            "-set_serial", f"0x{secrets.token_hex(8)}", "-days", "1", "-out", str(cert),
            "-extfile", str(extensions),
        )  # fmt: skip
        request.unlink()
        extensions.unlink()
        return Issued(cert, key)


class TestPki:
    """`ca` with its `server` and `client` certificates, and `stranger`: a client certificate signed by
    another CA (`other_ca`)."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, folder: Path) -> None:
        self.ca = CertificateAuthority(folder / "ca", "test-ca")
        self.server = self.ca.issue("server")
        self.client = self.ca.issue("client")
        self.other_ca = CertificateAuthority(folder / "other-ca", "other-ca")
        self.stranger = self.other_ca.issue("stranger")
