"""Implementations of CEXL's functions on Python values (Mixer's `pkg/lang` externs).

The conversions and the typed equalities behave as Mixer's did, on Go's own parsers (gonet): `ip()`
gives Go's 16-byte form, `dnsName()` returns the name with punycode labels decoded, and `==` between DNS
names, e-mail addresses or URIs that do not parse is an evaluation error, not false. Error texts are
Mixer's. `matches` runs RE2 (mixerd.regex), as Go's regexp does; a pattern known only per request goes
through a bounded cache of compiled patterns (`REQUEST_PATTERNS`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from mixerd.attribute.godur import format_go_duration
from mixerd.attribute.values import Duration, Timestamp
from mixerd.regex import RegexError, RequestPatterns

from . import gonet
from .errors import EvaluationError

_V4_MAPPED = b"\x00" * 10 + b"\xff\xff"
_INT64 = 1 << 64
_INT64_HALF = 1 << 63


def wrap64(value: int) -> int:
    """Go's int64 arithmetic wraps around."""
    return (value + _INT64_HALF) % _INT64 - _INT64_HALF


def go_text(value: Any) -> str:
    """`value` as Go's %v prints the Go value it stands for (Mixer's conversion errors show it)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Timestamp):
        text = value.isoformat()  # Go's time.Time.String() for a UTC time
        return text[:-1].replace("T", " ", 1) + " +0000 UTC"
    if isinstance(value, Duration):
        return format_go_duration(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, bytes | bytearray):
        return "[" + " ".join(str(b) for b in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{go_text(k)}:{go_text(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)


def _go_float(value: float) -> str:
    """%v of a float64: shortest digits, with an exponent below 1e-4 and from 1e6 on (1e+06)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    point = len(text) + exponent - 1
    head = "-" if sign else ""
    if point < -4 or point >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{head}{mantissa}e{'+' if point >= 0 else '-'}{abs(point):02d}"
    return head + format(Decimal(text).scaleb(exponent), "f")


# -- IP --------------------------------------------------------------------------------------------


def ip(text: str) -> bytes:
    """Go's net.ParseIP: 16 bytes, an IPv4 address in its IPv4-mapped form (::ffff:1.2.3.4), as Mixer
    handed it on. Equality, adapters and printing treat it as the IPv4 address it is."""
    packed = gonet.parse_ip(text)
    if packed is None:
        raise EvaluationError(f"could not convert {text} to IP_ADDRESS")
    return packed


def _ip16(value: bytes) -> bytes:
    return _V4_MAPPED + value if len(value) == 4 else value


def ip_equal(a: bytes, b: bytes) -> bool:
    """net.IP.Equal: an IPv4 address (4 bytes, as proxies send it) equals its IPv4-mapped form."""
    return a == b or _ip16(a) == _ip16(b)


# -- timestamps ------------------------------------------------------------------------------------


def timestamp(text: str) -> Timestamp:
    try:
        return Timestamp.parse(text)
    except ValueError:
        raise EvaluationError(
            f"could not convert '{text}' to TIMESTAMP. expected format: '2006-01-02T15:04:05Z07:00'"
        ) from None


# -- DNS names, emails, URIs -----------------------------------------------------------------------


def dns_name(text: str) -> str:
    """A DNS name under IDNA's label rules (no character rules: `a_b.com` passes, as in Mixer), returned
    with its punycode labels decoded."""
    try:
        return gonet.dns_to_unicode(text)
    except gonet.IDNAError as e:
        raise EvaluationError(f"error converting '{text}' to dns name: '{e}'") from None


def _dns_equal(a: str, b: str) -> bool:
    """Mixer's DNS name equality: both mapped for lookup (lower case; `_` or a space is an error), then
    equal, a trailing dot on one side only ignored. gonet.IDNAError when either does not map."""
    na, nb = gonet.dns_for_lookup(a), gonet.dns_for_lookup(b)
    if na and nb:
        if na[-1] == "." and nb[-1] != ".":
            na = na[:-1]
        if nb[-1] == "." and na[-1] != ".":
            nb = nb[:-1]
    return na == nb


def dns_name_equal(a: str, b: str) -> bool:
    try:
        return _dns_equal(a, b)
    except gonet.IDNAError as e:
        raise EvaluationError(str(e)) from None


def _email_parts(address: str) -> tuple[str, str]:
    local, _, domain = address.partition("@")  # the first @, as Mixer split it
    return local, domain


def email(text: str) -> str:
    """An address net/mail parses, without a display name, whose domain dnsName() accepts."""
    try:
        name, address = gonet.parse_address(text)
    except gonet.MailError as e:
        raise EvaluationError(f"error converting '{text}' to e-mail: '{e}'") from None
    if name:
        raise EvaluationError(f"error converting '{text}' to e-mail: display names are not allowed")
    try:
        dns_name(_email_parts(address)[1])
    except EvaluationError as e:
        raise EvaluationError(f"error converting '{text}' to e-mail: '{e}'") from None
    return text


def email_equal(a: str, b: str) -> bool:
    """Both parsed (`"joe"@x.com` is `joe@x.com`, a display name is ignored); domains compared as DNS
    names, local parts exactly."""
    try:
        local_a, domain_a = _email_parts(gonet.parse_address(a)[1])
        local_b, domain_b = _email_parts(gonet.parse_address(b)[1])
    except gonet.MailError as e:
        raise EvaluationError(str(e)) from None
    try:
        same_domain = _dns_equal(domain_a, domain_b)
    except gonet.IDNAError as e:
        raise EvaluationError(f"error comparing e-mails '{a}' and '{b}': {e}") from None
    return same_domain and local_a == local_b


def _parse_url(text: str) -> gonet.URL:
    try:
        return gonet.parse_url(text)
    except gonet.URLError as e:
        raise EvaluationError(f"error converting string to uri '{text}': '{e}'") from None


def uri(text: str) -> str:
    """A non-empty string Go's url.Parse accepts."""
    if text == "":
        raise EvaluationError("error converting string to uri: empty string")
    _parse_url(text)
    return text


def uri_equal(a: str, b: str) -> bool:
    """Mixer's URI equality: schemes in lower case; for http(s) the host compared as a DNS name and the
    port exactly; then the two URLs as Go prints them."""
    ua, ub = _parse_url(a), _parse_url(b)
    if ua.scheme != ub.scheme:
        return False
    if ua.scheme in (b"http", b"https"):
        try:
            host_a = ua.hostname().decode("utf-8", "surrogateescape")
            host_b = ub.hostname().decode("utf-8", "surrogateescape")
            if not _dns_equal(host_a, host_b):
                return False
        except gonet.IDNAError as e:
            raise EvaluationError(str(e)) from None
        if ua.port() != ub.port():
            return False
        ua.host = ub.host
    return ua.to_bytes() == ub.to_bytes()


# -- strings ---------------------------------------------------------------------------------------


def match(text: str, pattern: str) -> bool:
    """Mixer's glob: `*` all; `p*` prefix (tested first); `*p` suffix; otherwise equality."""
    if pattern.endswith("*"):
        return text.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return text.endswith(pattern[1:])
    return text == pattern


#: Patterns that arrive with requests (an attribute as the target of `matches`), compiled at most once
#: while they stay among the most recently used; bounds in mixerd.regex.
REQUEST_PATTERNS = RequestPatterns()


def matches(pattern: str, text: str) -> bool:
    """Go's regexp.MatchString: RE2 search (unanchored); the target of the method is the pattern."""
    try:
        regex = REQUEST_PATTERNS.get(pattern)
    except RegexError as err:
        raise EvaluationError(str(err)) from None
    return regex.search(text)


def starts_with(text: str, prefix: str) -> bool:
    return text.startswith(prefix)


def ends_with(text: str, suffix: str) -> bool:
    return text.endswith(suffix)


def to_lower(text: str) -> str:
    return text.lower()


def size(text: str) -> int:
    """Length in UTF-8 bytes, as Go's len(string)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def empty_string_map() -> dict[str, str]:
    return {}


def conditional_string(cond: bool, a: str, b: str) -> str:
    return a if cond else b
