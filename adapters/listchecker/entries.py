"""List entries: parsing them per entry type, looking values up, and reading a provider's body.

Built once per fetch, looked up per request: strings go in a set, IP blocks in one set per prefix
length (a lookup masks the address once per distinct length), regexes are tried in order.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from enum import IntEnum
from typing import Any

import yaml

from mixerd.adapter import Regex, RegexError, compile_regex

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class EntryType(IntEnum):
    """How list entries and looked-up values compare."""

    STRINGS = 0  # exact string equality
    CASE_INSENSITIVE_STRINGS = 1  # equality after case folding
    IP_ADDRESSES = 2  # entries are CIDR blocks (a bare IP is a /32 or /128), values are IP addresses
    REGEX = 3  # entries are RE2 (Go) regular expressions; a value is listed if any one matches (search)


class EntryError(ValueError):
    """A list entry that does not parse for the list's entry type."""


class BadValue(ValueError):
    """A looked-up value this list cannot hold (its text is the INVALID_ARGUMENT message)."""


def parse_entry(kind: EntryType, text: str) -> Any:
    """`text` as an entry of a `kind` list: a str, an ip network or a compiled regex."""
    if kind is EntryType.IP_ADDRESSES:
        try:
            return ipaddress.ip_network(text.strip(), strict=False)  # host bits are masked, as Go does
        except ValueError:
            raise EntryError(f"{text!r} is not an IP address or CIDR block") from None
    if kind is EntryType.REGEX:
        try:  # RE2, as Mixer's Go: linear in the looked-up value, whoever sends it
            return compile_regex(text)
        except RegexError as e:
            raise EntryError(f"{text!r}: {e}") from None  # e: "error parsing regexp: ..." (Go's words)
    if kind is EntryType.CASE_INSENSITIVE_STRINGS:
        return text.casefold()
    return text


class EntryList:
    """An immutable list of entries of one type; `key in entries` looks up a key from `lookup_key`."""

    def __init__(self, kind: EntryType, entries: Iterable[str]) -> None:
        self.kind = kind
        parsed = [parse_entry(kind, e) for e in entries]
        self._size = len(parsed)
        self._strings: frozenset[str] = frozenset()
        self._patterns: tuple[Regex, ...] = ()
        # (ip version, prefix length) -> network addresses shifted right past the host bits
        self._blocks: dict[tuple[int, int], set[int]] = {}
        if kind is EntryType.IP_ADDRESSES:
            for net in parsed:
                shift = net.max_prefixlen - net.prefixlen
                self._blocks.setdefault((net.version, net.prefixlen), set()).add(
                    int(net.network_address) >> shift
                )
        elif kind is EntryType.REGEX:
            self._patterns = tuple({p.pattern: p for p in parsed}.values())  # one of each pattern
        else:
            self._strings = frozenset(parsed)

    def __len__(self) -> int:
        return self._size

    def __contains__(self, key: object) -> bool:
        if self.kind is EntryType.IP_ADDRESSES:
            assert isinstance(key, ipaddress.IPv4Address | ipaddress.IPv6Address)
            addr = int(key)
            bits = key.max_prefixlen
            for (version, plen), nets in self._blocks.items():
                if version == key.version and addr >> (bits - plen) in nets:
                    return True
            return False
        if self.kind is EntryType.REGEX:
            assert isinstance(key, str)
            return any(p.search(key) for p in self._patterns)
        return key in self._strings


def lookup_key(kind: EntryType, value: Any) -> tuple[Any, str]:
    """(the key to look up, the value as text for messages); BadValue when `value` cannot be listed.

    An IP arrives as 4 or 16 raw bytes (or, in IP mode, as text that parses as one). A v4-mapped IPv6
    address counts as its IPv4 address, as Go's net.IP does.
    """
    if isinstance(value, bytes | bytearray):
        if len(value) not in (4, 16):
            raise BadValue(f"{len(value)} bytes are not an IP address (expected 4 or 16)")
        ip = _plain(ipaddress.ip_address(bytes(value)))
        if kind is EntryType.IP_ADDRESSES:
            return ip, str(ip)
        value = str(ip)
    elif not isinstance(value, str):
        raise BadValue(f"a value of type {type(value).__name__} is neither a string nor an IP address")
    elif kind is EntryType.IP_ADDRESSES:
        try:
            ip = _plain(ipaddress.ip_address(value))
        except ValueError:
            raise BadValue(f"{value!r} is not an IP address") from None
        return ip, str(ip)
    if kind is EntryType.CASE_INSENSITIVE_STRINGS:
        return value.casefold(), value
    return value, value


def _plain(ip: IPAddress) -> IPAddress:
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped if mapped is not None else ip


def parse_body(kind: EntryType, body: bytes) -> list[str]:
    """The entries in a provider's answer: YAML `whitelist: [...]` for IPs, else one entry per line."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise EntryError(f"the list is not UTF-8: {e}") from None
    if kind is not EntryType.IP_ADDRESSES:
        return [line.strip() for line in text.splitlines() if line.strip()]
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise EntryError(f"the list is not YAML: {e}") from None
    # Mixer's key is `whitelist` for blacklists too.
    items = doc.get("whitelist") if isinstance(doc, dict) else None
    if items is None and isinstance(doc, dict) and "whitelist" in doc:
        items = []  # `whitelist:` with nothing under it
    if not isinstance(items, list):
        raise EntryError("expected a YAML mapping with a 'whitelist' list of IP addresses or CIDR blocks")
    bad = [e for e in items if not isinstance(e, str | int) or isinstance(e, bool)]
    if bad:
        raise EntryError(f"{bad[0]!r} in 'whitelist' is not an IP address or CIDR block")
    return [str(e) for e in items]
