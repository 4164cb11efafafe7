"""The scenario harness shows the values adapters received as plain data, IPs as Go prints them."""

from __future__ import annotations

from mixerd.attribute import BUILTIN_MANIFEST, AttributeBag
from mixerd.lang import compile_expression
from mixerd.testing_scenarios.values import plain


def test_ips_print_as_go_prints_them() -> None:
    # ip("0.0.0.0") is Go's 16-byte form; net.IP prints it as the IPv4 address it is.
    default = compile_expression('source.ip | ip("0.0.0.0")', BUILTIN_MANIFEST).evaluate(AttributeBag())
    assert len(default) == 16
    assert plain(default) == "0.0.0.0"
    assert plain(b"\x0a\x00\x00\x01") == "10.0.0.1"
    assert plain(bytes.fromhex("20010db8000000000000000000000001")) == "2001:db8::1"
    assert plain(b"\x01\x02\x03") == "01:02:03"  # not an address: the bytes
