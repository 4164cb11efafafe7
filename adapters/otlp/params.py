"""otlp and zipkin params, with defaults, and how the zipkin params map onto the OTLP exporter.

Checks are pure (DESIGN.md decision 3): they look at the text of endpoints, headers and file paths and
never touch the network or the files (build reads the TLS files).
"""

from __future__ import annotations

import ipaddress
import math
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field

from mixerd.adapter import Duration, Problem

_SECOND = 1_000_000_000
# Module constants, not calls in the field defaults: Duration is immutable, so sharing one is safe.
_TEN_SECONDS = Duration(10 * _SECOND)
_FIVE_SECONDS = Duration(5 * _SECOND)
# gRPC metadata keys: lower-case letters, digits, '-', '_' and '.' (HTTP/2 header names, lower-cased).
_HEADER_KEY = re.compile(r"[0-9a-z_.-]+")
_HEADER_VALUE = re.compile(r"[\x20-\x7e]*")  # printable ASCII: what a non-binary gRPC header may carry
_ZIPKIN_DEFAULT_URL = "http://localhost:9411/api/v2/spans"


@dataclass
class Tls:
    """How the connection to the OTLP receiver is secured."""

    # Plain-text HTTP/2 (h2c). false: TLS, trusting ca_file (or gRPC's default roots when it is empty).
    insecure: bool = True
    ca_file: str = ""  # PEM CA certificates that sign the receiver's certificate
    cert_file: str = ""  # PEM client certificate (mutual TLS), with key_file
    key_file: str = ""  # PEM private key of cert_file

    def check(self) -> Iterator[Problem]:
        files = (("caFile", self.ca_file), ("certFile", self.cert_file), ("keyFile", self.key_file))
        if self.insecure:
            for name, path in files:
                if path:
                    yield f".{name}", "is used only with TLS: set insecure: false"
        if self.cert_file and not self.key_file:
            yield ".keyFile", "is needed with certFile (the client certificate's private key)"
        if self.key_file and not self.cert_file:
            yield ".certFile", "is needed with keyFile (the client certificate)"


@dataclass
class Params:
    # The OTLP/gRPC receiver (an OpenTelemetry Collector, Jaeger, ...): host:port, [v6 address]:port.
    endpoint: str = "localhost:4317"
    # gRPC metadata sent with every export (e.g. authorization); names are case-insensitive.
    headers: dict[str, str] = field(default_factory=dict)
    tls: Tls = field(default_factory=Tls)
    # How long one export may take before it fails (and is retried).
    timeout: Duration = _TEN_SECONDS
    # The share of traces exported, decided from the trace id (so every span of a trace, on every
    # replica, gets the same answer). 1: every span the proxies sampled.
    sampling_probability: float = 1.0
    # Spans waiting at most; beyond that new spans are dropped and counted.
    queue_capacity: int = 2048
    # Spans per export request; an export happens when this many wait, or every flush_interval.
    batch_size: int = 512
    flush_interval: Duration = _FIVE_SECONDS

    def check(self) -> Iterator[Problem]:
        problem = endpoint_problem(self.endpoint)
        if problem:
            yield ".endpoint", problem
        yield from _header_problems(self.headers)
        if self.timeout <= 0:
            yield ".timeout", f"must be greater than 0, got {self.timeout}"
        if not (math.isfinite(self.sampling_probability) and 0 <= self.sampling_probability <= 1):
            yield ".samplingProbability", f"must be between 0 and 1, got {self.sampling_probability}"
        if self.queue_capacity < 1:
            yield ".queueCapacity", f"must be at least 1, got {self.queue_capacity}"
        if self.batch_size < 1:
            yield ".batchSize", f"must be at least 1, got {self.batch_size}"
        elif self.batch_size > self.queue_capacity >= 1:
            yield (
                ".batchSize",
                f"must not exceed queueCapacity ({self.queue_capacity}), got {self.batch_size}",
            )
        if self.flush_interval <= 0:
            yield ".flushInterval", f"must be greater than 0, got {self.flush_interval}"


@dataclass
class ZipkinParams:
    """Mixer's `adapter.zipkin.config.Params`, exported over OTLP (see zipkin_to_otlp)."""

    # Mixer's Zipkin HTTP endpoint. Its scheme and host:port choose the OTLP/gRPC receiver; its path
    # is not used (OTLP/gRPC has one fixed service path). Mixer required it.
    url: str = _ZIPKIN_DEFAULT_URL
    # 0: no sampling decision by mixerd (every span is exported), as in Mixer; else the share of
    # traces exported.
    sample_probability: float = 0.0

    def check(self) -> Iterator[Problem]:
        try:
            url_endpoint(self.url)
        except ValueError as e:
            yield ".url", str(e)
        if not (math.isfinite(self.sample_probability) and 0 <= self.sample_probability <= 1):
            yield ".sampleProbability", f"must be between 0 and 1, got {self.sample_probability}"


def zipkin_to_otlp(zipkin: ZipkinParams) -> Params:
    """The OTLP exporter settings a zipkin handler runs with: the url's host:port (the scheme's port
    when it names none), TLS for https, and the sampling probability (0 meaning every span)."""
    endpoint, secure = url_endpoint(zipkin.url)
    return Params(
        endpoint=endpoint,
        tls=Tls(insecure=not secure),
        sampling_probability=zipkin.sample_probability or 1.0,
    )


def url_endpoint(url: str) -> tuple[str, bool]:
    """(host:port, uses TLS) of an http:// or https:// URL; ValueError when it is not one."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an http:// or https:// URL, got {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"bad port in {url!r}") from None
    host = parts.hostname
    if not host:
        raise ValueError(f"no host in {url!r}")
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}", parts.scheme == "https"


def endpoint_problem(endpoint: str) -> str:
    """What is wrong with a `host:port` endpoint, or ""."""
    if "://" in endpoint:
        return f"expected host:port without a scheme (TLS is chosen by tls.insecure), got {endpoint!r}"
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isascii() or not port.isdigit():
        return f"expected host:port, got {endpoint!r}"
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return f"{host} is not an IPv6 address"
    elif ":" in host:
        return f"an IPv6 address needs brackets ([::1]:4317), got {endpoint!r}"
    if not 0 < int(port) < 65536:
        return f"port must be between 1 and 65535, got {int(port)}"
    return ""


def _header_problems(headers: dict[str, str]) -> Iterator[Problem]:
    seen: dict[str, str] = {}
    for key, value in headers.items():
        path = f".headers[{key!r}]"
        name = key.lower()
        if not _HEADER_KEY.fullmatch(name):
            yield path, "a header name may hold only letters, digits, '-', '_' and '.'"
        elif name.startswith("grpc-"):
            yield path, "grpc- headers are reserved for gRPC itself"
        elif name.endswith("-bin"):
            yield path, "binary (-bin) headers are not supported"
        elif name in seen:
            yield path, f"the same header as {seen[name]!r} (names are case-insensitive)"
        if not _HEADER_VALUE.fullmatch(value):
            yield path, "a header value may hold only printable ASCII characters"
        seen.setdefault(name, key)
