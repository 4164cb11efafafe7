"""The CEXL function table (MIXER.md 4.1): operators and functions, their signatures and implementations."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from mixerd.attribute.values import ValueType as V

from . import externs as x
from .types import ANY, FunctionInfo

_TABLE = [
    # Operators; the compiler writes these inline or picks the per-type implementation.
    FunctionInfo("EQ", (ANY, ANY), V.BOOL),
    FunctionInfo("NEQ", (ANY, ANY), V.BOOL),
    FunctionInfo("LT", (ANY, ANY), V.BOOL),
    FunctionInfo("LEQ", (ANY, ANY), V.BOOL),
    FunctionInfo("GT", (ANY, ANY), V.BOOL),
    FunctionInfo("GEQ", (ANY, ANY), V.BOOL),
    FunctionInfo("LAND", (V.BOOL, V.BOOL), V.BOOL),
    FunctionInfo("LOR", (V.BOOL, V.BOOL), V.BOOL),
    FunctionInfo("OR", (ANY, ANY), ANY),
    FunctionInfo("INDEX", (V.STRING_MAP, V.STRING), V.STRING),
    FunctionInfo("ADD", (ANY, ANY), ANY),
    FunctionInfo("conditional", (V.BOOL, ANY, ANY), ANY),
    FunctionInfo("size", (V.STRING,), V.INT64, impl=x.size),
    # Functions and methods (Mixer's externs with type metadata).
    FunctionInfo("conditionalString", (V.BOOL, V.STRING, V.STRING), V.STRING, impl=x.conditional_string),
    FunctionInfo("match", (V.STRING, V.STRING), V.BOOL, impl=x.match),
    FunctionInfo("matches", (V.STRING,), V.BOOL, instance=True, target_type=V.STRING, impl=x.matches),
    FunctionInfo("startsWith", (V.STRING,), V.BOOL, instance=True, target_type=V.STRING, impl=x.starts_with),
    FunctionInfo("endsWith", (V.STRING,), V.BOOL, instance=True, target_type=V.STRING, impl=x.ends_with),
    FunctionInfo("toLower", (V.STRING,), V.STRING, impl=x.to_lower),
    FunctionInfo("ip", (V.STRING,), V.IP_ADDRESS, impl=x.ip),
    FunctionInfo("timestamp", (V.STRING,), V.TIMESTAMP, impl=x.timestamp),
    FunctionInfo("dnsName", (V.STRING,), V.DNS_NAME, impl=x.dns_name),
    FunctionInfo("email", (V.STRING,), V.EMAIL_ADDRESS, impl=x.email),
    FunctionInfo("uri", (V.STRING,), V.URI, impl=x.uri),
    FunctionInfo("emptyStringMap", (), V.STRING_MAP, impl=x.empty_string_map),
]
# Mixer's externs behind the operators (ip_equal, dnsName_equal, timestamp_lt, ...) have no type
# metadata, so an expression cannot call them ("unknown function: ip_equal"); they are not listed here.

FUNCTIONS: Mapping[str, FunctionInfo] = MappingProxyType({f.name: f for f in _TABLE})

# Equality per type: the normalising helpers for the typed strings and IPs, plain == otherwise.
EQUALITY = {
    V.IP_ADDRESS: x.ip_equal,
    V.DNS_NAME: x.dns_name_equal,
    V.EMAIL_ADDRESS: x.email_equal,
    V.URI: x.uri_equal,
}
