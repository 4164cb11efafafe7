"""Implementations of CEXL's functions on Python values (Mixer's `pkg/lang/runtime` externs).

Known differences from Go, kept small on purpose:
* dnsName/email/uri validation approximates Go's idna/net/mail/net/url packages (see each function).
* `matches` runs RE2 (mixerd.regex), as Go's regexp does; a pattern known only per request goes through
  a bounded cache of compiled patterns (`REQUEST_PATTERNS`).
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from urllib.parse import urlsplit

from mixerd.attribute.values import Timestamp
from mixerd.regex import RegexError, RequestPatterns

from .errors import EvaluationError

_V4_MAPPED = b"\x00" * 10 + b"\xff\xff"
_INT64 = 1 << 64
_INT64_HALF = 1 << 63


def wrap64(value: int) -> int:
    """Go's int64 arithmetic wraps around."""
    return (value + _INT64_HALF) % _INT64 - _INT64_HALF


# -- IP --------------------------------------------------------------------------------------------


def ip(text: str) -> bytes:
    """Go's net.ParseIP: dotted IPv4 or IPv6 text (no zone); 4 or 16 raw bytes."""
    if "%" not in text:
        try:
            return ipaddress.ip_address(text).packed
        except ValueError:
            pass
    raise EvaluationError(f"could not convert {text} to IP_ADDRESS")


def _ip16(value: bytes) -> bytes:
    return _V4_MAPPED + value if len(value) == 4 else value


def ip_equal(a: bytes, b: bytes) -> bool:
    """net.IP.Equal: an IPv4 address equals its IPv4-mapped IPv6 form."""
    return a == b or _ip16(a) == _ip16(b)


# -- timestamps ------------------------------------------------------------------------------------


def timestamp(text: str) -> Timestamp:
    try:
        return Timestamp.parse(text)
    except ValueError:
        raise EvaluationError(
            f"could not convert '{text}' to TIMESTAMP. expected format: '2006-01-02T15:04:05Z07:00'"
        ) from None


def timestamp_equal(a: Timestamp, b: Timestamp) -> bool:
    return a == b


def timestamp_lt(a: Timestamp, b: Timestamp) -> bool:
    return a < b


def timestamp_le(a: Timestamp, b: Timestamp) -> bool:
    return a <= b


def timestamp_gt(a: Timestamp, b: Timestamp) -> bool:
    return a > b


def timestamp_ge(a: Timestamp, b: Timestamp) -> bool:
    return a >= b


# -- DNS names, emails, URIs -----------------------------------------------------------------------

_LDH = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


#: Names longer than this are not remembered: a valid one has at most 253 characters after mapping, and
#: the cache must not keep a caller's megabyte-long strings (4096 entries of at most this size).
_DNS_CACHED_LENGTH = 256


def _dns_ascii(name: str) -> str | None:
    """The lower-case ASCII (punycode) form of a DNS name without its trailing dot; None if invalid."""
    return _dns_ascii_cached(name) if len(name) <= _DNS_CACHED_LENGTH else _dns_ascii_of(name)


def _dns_ascii_of(name: str) -> str | None:
    """`_dns_ascii`, computed.

    Approximates Go's idna lookup profile with strict domain names: each label is letters, digits and
    inner hyphens after IDNA mapping, 1..63 bytes, the whole name at most 253.
    """
    body = name[:-1] if name.endswith(".") else name
    if not body:
        return None
    labels = []
    for label in body.split("."):
        try:
            ascii_label = (
                label.encode("idna").decode("ascii").lower() if not label.isascii() else label.lower()
            )
        except UnicodeError:
            return None
        if not _LDH.fullmatch(ascii_label):
            return None
        labels.append(ascii_label)
    out = ".".join(labels)
    return out if len(out) <= 253 else None


_dns_ascii_cached = lru_cache(maxsize=4096)(_dns_ascii_of)


def dns_name(text: str) -> str:
    if _dns_ascii(text) is None:
        raise EvaluationError(f"error converting string to dns name: '{text}' is not a valid DNS name")
    return text


def dns_name_equal(a: str, b: str) -> bool:
    """Case-insensitive after IDNA mapping; a trailing dot on one side only is ignored."""
    na, nb = _dns_ascii(a), _dns_ascii(b)
    if na is None or nb is None:
        return a.rstrip(".").lower() == b.rstrip(".").lower()
    return na == nb


_LOCAL_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LOCAL_QUOTED = re.compile(r'"(?:[^"\\\r\n]|\\.)*"')


def email(text: str) -> str:
    """An RFC 5322 addr-spec without a display name, whose domain is a valid DNS name (net/mail-like)."""
    local, at, domain = text.rpartition("@")
    ok = bool(at) and (_LOCAL_ATOM.fullmatch(local) or _LOCAL_QUOTED.fullmatch(local))
    if not ok or _dns_ascii(domain) is None or domain.endswith("."):
        raise EvaluationError(f"error converting string to email: '{text}' is not a valid email address")
    return text


def email_equal(a: str, b: str) -> bool:
    """Exact local part, domain compared as a DNS name."""
    la, _, da = a.rpartition("@")
    lb, _, db = b.rpartition("@")
    return la == lb and dns_name_equal(da, db)


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def uri(text: str) -> str:
    """Non-empty and parseable as a URL (approximating Go's url.Parse: no control characters,
    well-formed %-escapes, a scheme when the text starts with ':', a numeric port)."""
    bad = (
        not text
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)
        or _BAD_ESCAPE.search(text) is not None
        or text.startswith(":")
    )
    if not bad:
        try:
            urlsplit(text).port  # noqa: B018 - validates the port
        except ValueError:
            bad = True
    if bad:
        raise EvaluationError(f"error converting string to uri: '{text}' is not a valid URI")
    return text


def uri_equal(a: str, b: str) -> bool:
    """Scheme case-insensitive; for http(s) the host as a DNS name and the port exactly; then the rest."""
    try:
        ua, ub = urlsplit(a), urlsplit(b)
        if ua.scheme.lower() != ub.scheme.lower():
            return False
        if ua.scheme.lower() in ("http", "https"):
            if not dns_name_equal(ua.hostname or "", ub.hostname or "") or ua.port != ub.port:
                return False
            ua, ub = ua._replace(netloc=ua.username or ""), ub._replace(netloc=ub.username or "")
        return ua._replace(scheme="").geturl() == ub._replace(scheme="").geturl()
    except ValueError:
        return a == b


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
