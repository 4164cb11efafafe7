"""statsd params (Mixer's `adapter.statsd.config.Params`), with defaults = Mixer's default config."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum

from mixerd.adapter import Duration, Problem

from .template import TemplateError, parse

#: The largest payload of one UDP datagram (over IPv4).
MAX_UDP_PAYLOAD = 65_507
_FLUSH_DURATION = Duration(300_000_000)  # immutable, so one shared default is safe
_UNSAFE_IN_NAMES = (":", "|", "\n", "\r")  # they would break a statsd line `name:value|type`


class MetricType(IntEnum):
    UNKNOWN = 0
    COUNTER = 1
    GAUGE = 2
    DISTRIBUTION = 3


@dataclass
class MetricInfo:
    """How one metric instance is sent: its statsd type, and its name as a template over its dimensions."""

    type: MetricType = MetricType.UNKNOWN
    name_template: str = ""  # empty: the instance's name

    def check(self) -> Iterator[Problem]:
        if self.type == MetricType.UNKNOWN:
            yield ".type", "must be COUNTER, GAUGE or DISTRIBUTION"
        try:
            parse(self.name_template)
        except TemplateError as e:
            yield ".nameTemplate", f"cannot use template {self.name_template!r}: {e}"
        else:
            yield from _unsafe(".nameTemplate", self.name_template)


@dataclass
class Params:
    address: str = "localhost:8125"
    prefix: str = ""  # joined to each name with a dot, as the statsd client libraries do
    flush_duration: Duration = _FLUSH_DURATION
    flush_bytes: int = 512
    sampling_rate: float = 1.0
    metrics: dict[str, MetricInfo] = field(default_factory=dict)  # instance FQN -> MetricInfo

    def check(self) -> Iterator[Problem]:
        problem = address_problem(self.address)
        if problem:
            yield ".address", problem
        yield from _unsafe(".prefix", self.prefix)
        if self.flush_duration <= 0:
            yield ".flushDuration", f"must be greater than 0, got {self.flush_duration}"
        if not 0 < self.flush_bytes <= MAX_UDP_PAYLOAD:
            limit = f"must be between 1 and {MAX_UDP_PAYLOAD} (the largest UDP payload)"
            yield ".flushBytes", f"{limit}, got {self.flush_bytes}"
        if not (math.isfinite(self.sampling_rate) and 0 <= self.sampling_rate <= 1):
            yield ".samplingRate", f"must be between 0 and 1, got {self.sampling_rate}"


def split_address(address: str) -> tuple[str, int]:
    """`host:port` (or `[v6 address]:port`) as (host, port); a missing host means localhost."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit():
        raise ValueError(f"expected host:port, got {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 address needs brackets ([::1]:8125), got {address!r}")
    number = int(port)
    if not 0 < number < 65536:
        raise ValueError(f"port must be between 1 and 65535, got {number}")
    return host or "localhost", number


def address_problem(address: str) -> str:
    try:
        split_address(address)
    except ValueError as e:
        return str(e)
    return ""


def _unsafe(path: str, text: str) -> Iterator[Problem]:
    bad = sorted({c for c in _UNSAFE_IN_NAMES if c in text})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        yield path, f"must not contain {shown}: they would break the statsd line format"
