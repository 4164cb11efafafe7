"""fluentd params (Mixer's `adapter.fluentd.config.Params`), with defaults = Mixer's default config."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from mixerd.adapter import Duration, Problem, camel

_MINUTE = Duration(60_000_000_000)  # immutable, so one shared default is safe
_POSITIVE = (
    "instance_buffer_size",
    "max_batch_size_bytes",
    "push_interval_duration",
    "push_timeout_duration",
)


@dataclass
class Params:
    address: str = "localhost:24224"
    integer_duration: bool = False  # durations as whole milliseconds instead of Go text ("1.5s")
    instance_buffer_size: int = 1024  # entries waiting at most; beyond that they are dropped
    max_batch_size_bytes: int = 8 * 1024 * 1024  # the largest single write to Fluentd
    push_interval_duration: Duration = _MINUTE  # push at least this often
    push_timeout_duration: Duration = _MINUTE  # give up on a connect or a write after this long

    def check(self) -> Iterator[Problem]:
        try:
            split_address(self.address)
        except ValueError as e:
            yield ".address", str(e)
        for name in _POSITIVE:
            value = getattr(self, name)
            if value <= 0:
                yield f".{camel(name)}", f"must be greater than 0, got {value}"


def split_address(address: str) -> tuple[str, int]:
    """`host:port` as (host, port), a missing host meaning localhost. The Fluentd client connects over
    IPv4, so an IPv6 address is refused."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit():
        raise ValueError(f"expected host:port, got {address!r}")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        is_v6 = ipaddress.ip_address(bare).version == 6
    except ValueError:
        is_v6 = ":" in bare
    if is_v6:
        raise ValueError(f"the Fluentd client connects over IPv4 only: use an IPv4 address, not {bare}")
    number = int(port)
    if not 0 < number < 65536:
        raise ValueError(f"port must be between 1 and 65535, got {number}")
    return bare or "localhost", number
