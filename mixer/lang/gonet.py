"""Go's parsers behind Mixer's externs, as Mixer 1.4 (built with Go 1.13) ran them: net.ParseIP, the two
IDNA profiles of golang.org/x/net/idna it set up, net/mail's ParseAddress and net/url's Parse and String.

mixerd's own code, written to behave as those packages do (checked by running Mixer's externs on many
inputs); their error texts are Go's word for word, since Mixer passed them on. Where this does not follow
Go 1.13 exactly:
* IDNA: the UTS #46 table comes from the `idna` package (a newer Unicode version than Go 1.13's x/net);
  the bidi and joiner rules are that package's RFC 5893/5892 checks; for ASCII text every rule is Go's.
* net/mail: RFC 2047 encoded words in display names are not decoded (only the address is ever used).
* net/url: Go 1.13's behaviour where later Go changed it (error texts without quotes, no `OmitHost`,
  the fragment re-escaped rather than kept as written).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import idna

# -- Go's %q -----------------------------------------------------------------------------------------

_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _go_escape(c: str, quote: str) -> str:
    if c == quote or c == "\\":
        return "\\" + c
    if c in _GO_ESCAPES:
        return _GO_ESCAPES[c]
    if c.isprintable() or c == " ":
        return c
    code = ord(c)
    if code < 0x80:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, carried by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def go_quote(text: str) -> str:
    """`text` as Go's %q (strconv.Quote) prints it: `"a\\"b"`."""
    return '"' + "".join(_go_escape(c, '"') for c in text) + '"'


def go_quote_rune(c: str) -> str:
    """One character as Go's %q prints a rune: `'a'`."""
    return "'" + _go_escape(c, "'") + "'"


# -- net.ParseIP (Go 1.13) ---------------------------------------------------------------------------

_V4_IN_V6 = b"\x00" * 10 + b"\xff\xff"
_BIG = 0xFFFFFF  # Go's dtoi/xtoi give up at this value


def _digits(text: str, start: int, base: int) -> tuple[int, int]:
    """The number at `start` in `base` (10 or 16) and where it ends; end == start when there is none."""
    n, i = 0, start
    while i < len(text):
        d = text[i]
        if "0" <= d <= "9":
            v = ord(d) - 48
        elif base == 16 and ("a" <= d <= "f" or "A" <= d <= "F"):
            v = ord(d.lower()) - 87
        else:
            break
        n = n * base + v
        if n >= _BIG:
            return 0, start
        i += 1
    return n, i


def _parse_v4(text: str) -> bytes | None:
    # Go 1.13 allows leading zeros ("010.1.1.1" is 10.1.1.1); Go 1.17 stopped doing so.
    out = bytearray()
    i = 0
    for part in range(4):
        if part:
            if i >= len(text) or text[i] != ".":
                return None
            i += 1
        n, end = _digits(text, i, 10)
        if end == i or n > 0xFF:
            return None
        out.append(n)
        i = end
    return bytes(out) if i == len(text) else None


def _parse_v6(text: str) -> bytes | None:
    groups: list[int] = []  # bytes so far
    ellipsis = -1
    s = text
    if s.startswith("::"):
        ellipsis, s = 0, s[2:]
        if not s:
            return bytes(16)
    while len(groups) < 16:
        n, end = _digits(s, 0, 16)
        if end == 0 or n > 0xFFFF:
            return None
        if end < len(s) and s[end] == ".":  # a trailing IPv4 address
            if (ellipsis < 0 and len(groups) != 12) or len(groups) + 4 > 16:
                return None
            v4 = _parse_v4(s)
            if v4 is None:
                return None
            groups.extend(v4)
            s = ""
            break
        groups.extend((n >> 8, n & 0xFF))
        s = s[end:]
        if not s:
            break
        if s[0] != ":" or len(s) == 1:
            return None
        s = s[1:]
        if s[0] == ":":
            if ellipsis >= 0:
                return None
            ellipsis, s = len(groups), s[1:]
            if not s:
                break
    if s:
        return None
    if len(groups) < 16:
        if ellipsis < 0:
            return None
        groups[ellipsis:ellipsis] = [0] * (16 - len(groups))
    elif ellipsis >= 0:
        return None  # `::` must stand for at least one group
    return bytes(groups)


def parse_ip(text: str) -> bytes | None:
    """Go 1.13's net.ParseIP: always 16 bytes (an IPv4 address in its IPv4-mapped form), None if invalid.

    Like Go, the first `.` or `:` decides: dotted IPv4, or IPv6 (a trailing dotted part allowed, no zone).
    """
    for c in text:
        if c == ".":
            v4 = _parse_v4(text)
            return None if v4 is None else _V4_IN_V6 + v4
        if c == ":":
            return _parse_v6(text)
    return None


# -- golang.org/x/net/idna: the two profiles Mixer used ---------------------------------------------


class IDNAError(ValueError):
    """An IDNA failure, with x/net/idna's text (`idna: invalid label "-a"`)."""


def _label_error(label: str) -> IDNAError:
    return IDNAError(f"idna: invalid label {go_quote(label)}")


def _rune_error(c: str) -> IDNAError:
    return IDNAError(f"idna: disallowed rune U+{ord(c):04X}")


class _Labels:
    """x/net/idna's label iterator: one trailing empty label (a final dot) is not a label of its own."""

    def __init__(self, text: str) -> None:
        self.orig = text
        self.parts: list[str] | None = None  # once a label is replaced
        self.start = self.end = self.i = 0

    def done(self) -> bool:
        return self.start >= len(self.orig)

    def label(self) -> str:
        if self.parts is not None:
            return self.parts[self.i]
        dot = self.orig.find(".", self.start)
        self.end = len(self.orig) if dot < 0 else dot
        return self.orig[self.start : self.end]

    def next(self) -> None:
        self.i += 1
        if self.parts is not None:
            last = len(self.parts) - 1
            if self.i > last or (self.i == last and self.parts[self.i] == ""):
                self.start = len(self.orig)
        else:
            self.start = self.end + 1
            if self.start == len(self.orig) - 1 and self.orig[self.start] == ".":
                self.start = len(self.orig)

    def set(self, label: str) -> None:
        if self.parts is None:
            self.parts = self.orig.split(".")
        self.parts[self.i] = label

    def result(self) -> str:
        return ".".join(self.parts) if self.parts is not None else self.orig


_ASCII_VALID = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")


def _map_for_lookup(text: str) -> str:
    """UTS #46 mapping with the STD3 rules (x/net/idna's MapForLookup): upper case to lower case, `_`,
    spaces and the like refused with the first such character."""
    if text.isascii():
        for c in text:
            if c not in _ASCII_VALID and not ("A" <= c <= "Z"):
                raise _rune_error(c)
        return text.lower()
    out = []
    for c in text:
        try:
            out.append(idna.uts46_remap(c, std3_rules=True, transitional=False))
        except idna.IDNAError:
            raise _rune_error(c) from None
    return unicodedata.normalize("NFC", "".join(out))


def _punycode(encoded: str) -> str:
    """The label after `xn--`, decoded; IDNAError naming `encoded` as Go does."""
    if encoded == "":
        return ""
    dash = encoded.rfind("-")
    if dash == 0:
        raise _label_error(encoded)
    if dash == len(encoded) - 1:
        return encoded[:-1]
    try:
        return encoded.encode("ascii").decode("punycode")
    except (UnicodeError, ValueError, IndexError):
        raise _label_error(encoded) from None


def _check_decoded(label: str) -> None:
    """A label decoded from punycode must be NFC and made of characters valid as they are."""
    if unicodedata.normalize("NFC", label) != label:
        raise _label_error(label)
    for c in label:
        if c in _ASCII_VALID:
            continue
        try:
            if idna.uts46_remap(c, std3_rules=True, transitional=False) != c:
                raise _label_error(label)
        except idna.IDNAError:
            raise _label_error(label) from None


def _check_label(label: str, verify_length: bool) -> None:
    """x/net/idna's validateLabel: hyphens, a leading combining mark, joiners in context."""
    if label == "":
        if verify_length:
            raise _label_error(label)
        return
    raw = label.encode("utf-8", "surrogatepass")
    if (len(raw) > 4 and raw[2:4] == b"--") or label[0] == "-" or label[-1] == "-":
        raise _label_error(label)
    if label.isascii():
        return
    if unicodedata.category(label[0]).startswith("M"):
        raise _label_error(label)
    for pos, c in enumerate(label):
        if c in "\u200c\u200d":
            try:
                ok = idna.valid_contextj(label, pos)
            except (idna.IDNAError, ValueError):
                ok = False
            if not ok:
                raise _label_error(label)


def _has_rtl(text: str) -> bool:
    return not text.isascii() and any(unicodedata.bidirectional(c) in ("R", "AL", "AN") for c in text)


def _process(text: str, *, lookup: bool) -> str:
    """x/net/idna's ToUnicode for Mixer's profiles: `lookup` is the equality one (MapForLookup and the
    bidi rule), otherwise the dnsName() one (NFC only, strict lengths, label and bidi rules)."""
    error: IDNAError | None = None
    if lookup:
        text = _map_for_lookup(text)
    else:
        text = unicodedata.normalize("NFC", text)
        if text == "":
            raise _label_error(text)
    labels = _Labels(text)
    bidi = _has_rtl(text)
    while not labels.done():
        label = labels.label()
        if label == "":
            if error is None and not lookup:
                error = _label_error(text)  # Go names the whole name here
        elif label.startswith("xn--"):
            try:
                decoded = _punycode(label[4:])
            except IDNAError as e:
                error = error or e
            else:
                labels.set(decoded)
                bidi = bidi or _has_rtl(decoded)
                if error is None:
                    try:
                        _check_decoded(decoded)
                        _check_label(decoded, not lookup)
                    except IDNAError as e:
                        error = e
        elif error is None:
            try:
                _check_label(label, not lookup)
            except IDNAError as e:
                error = e
        labels.next()
    if error is not None:
        raise error
    if bidi:  # a name with right-to-left text: every label must meet the bidi rule (RFC 5893)
        labels.start = labels.end = labels.i = 0
        while not labels.done():
            label = labels.label()
            try:
                if label and not idna.check_bidi(label, check_ltr=True):
                    raise _label_error(text)
            except (idna.IDNAError, ValueError):
                raise _label_error(text) from None
            labels.next()
    return labels.result()


def dns_to_unicode(text: str) -> str:
    """Mixer's dnsName() profile (strict lengths, label rules, no mapping): the name with punycode labels
    decoded, or IDNAError. `_` and spaces pass: this profile has no character rules of its own."""
    return _process(text, lookup=False)


def dns_for_lookup(text: str) -> str:
    """Mixer's equality profile (MapForLookup): the lower-cased, mapped name, or IDNAError."""
    return _process(text, lookup=True)


# -- net/mail.ParseAddress ---------------------------------------------------------------------------


class MailError(ValueError):
    """A net/mail failure, with its text (`mail: missing '@' or angle-addr`)."""


def _is_vchar(c: str) -> bool:
    return "!" <= c <= "~" or ord(c) >= 0x80


def _is_atext(c: str, dot: bool, permissive: bool) -> bool:
    if c == ".":
        return dot
    if c in "()[];@\\,":
        return permissive
    if c in '<>":':
        return False
    return _is_vchar(c)


class _MailParser:
    def __init__(self, text: str) -> None:
        self.s = text

    def skip_space(self) -> None:
        self.s = self.s.lstrip(" \t")

    def consume(self, c: str) -> bool:
        if self.s.startswith(c):
            self.s = self.s[1:]
            return True
        return False

    def skip_cfws(self) -> bool:
        self.skip_space()
        while self.consume("("):
            if self.comment() is None:
                return False
            self.skip_space()
        return True

    def comment(self) -> str | None:
        """A comment after its `(`, nested parentheses and escapes included; None if it never closes."""
        depth, out = 1, []
        while self.s and depth:
            c = self.s[0]
            if c == "\\" and len(self.s) > 1:
                self.s = self.s[1:]
                c = self.s[0]
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            if depth:
                out.append(c)
            self.s = self.s[1:]
        return "".join(out) if depth == 0 else None

    def quoted(self) -> str:
        """A quoted string (the parser is at its `"`), unquoted."""
        out: list[str] = []
        i, escaped = 1, False
        while True:
            if i >= len(self.s):
                raise MailError("mail: unclosed quoted-string")
            c = self.s[i]
            if escaped:
                if not (_is_vchar(c) or c in " \t"):
                    raise MailError(f"mail: bad character in quoted-string: {go_quote_rune(c)}")
                out.append(c)
                escaped = False
            elif c == '"':
                break
            elif c == "\\":
                escaped = True
            elif (_is_vchar(c) and c != "\\") or c in " \t":
                out.append(c)
            else:
                raise MailError(f"mail: bad character in quoted-string: {go_quote_rune(c)}")
            i += 1
        self.s = self.s[i + 1 :]
        return "".join(out)

    def atom(self, dot: bool, permissive: bool) -> str:
        i = 0
        while i < len(self.s) and _is_atext(self.s[i], dot, permissive):
            i += 1
        if i == 0:
            raise MailError("mail: invalid string")
        atom, self.s = self.s[:i], self.s[i:]
        if not permissive:
            if atom.startswith("."):
                raise MailError("mail: leading dot in atom")
            if ".." in atom:
                raise MailError("mail: double dot in atom")
            if atom.endswith("."):
                raise MailError("mail: trailing dot in atom")
        return atom

    def addr_spec(self) -> str:
        saved = self.s
        try:
            self.skip_space()
            if not self.s:
                raise MailError("mail: no addr-spec")
            if self.s[0] == '"':
                try:
                    local = self.quoted()
                except MailError:
                    local = ""  # Go reports any failure here as an empty quoted string
                if local == "":
                    raise MailError("mail: empty quoted string in addr-spec")
            else:
                local = self.atom(True, False)
            if not self.consume("@"):
                raise MailError("mail: missing @ in addr-spec")
            self.skip_space()
            if not self.s:
                raise MailError("mail: no domain in addr-spec")
            return local + "@" + self.atom(True, False)
        except MailError:
            self.s = saved
            raise

    def phrase(self) -> str:
        words: list[str] = []
        error: MailError | None = None
        while True:
            self.skip_space()
            if not self.s:
                break
            try:
                words.append(self.quoted() if self.s[0] == '"' else self.atom(True, True))
            except MailError as e:
                error = e
                break
        if error is not None and not words:
            raise MailError(f"mail: missing word in phrase: {error}")
        return " ".join(words)

    def address(self, group: bool) -> list[tuple[str, str]]:
        """(display name, address) pairs: one, or a group's."""
        self.skip_space()
        if not self.s:
            raise MailError("mail: no address")
        try:
            spec = self.addr_spec()
        except MailError:
            pass
        else:
            name = ""
            self.skip_space()
            if self.s.startswith("("):
                self.s = self.s[1:]
                comment = self.comment()
                if comment is None:
                    raise MailError("mail: misformatted parenthetical comment")
                name = " ".join(w for w in comment.replace("\t", " ").split(" ") if w)
            return [(name, spec)]
        name = self.phrase() if not self.s.startswith("<") else ""
        self.skip_space()
        if group and self.consume(":"):
            return self.group()
        if not self.consume("<"):
            if all(_is_atext(c, True, False) for c in name):
                raise MailError("mail: missing '@' or angle-addr")
            raise MailError("mail: no angle-addr")
        spec = self.addr_spec()
        if not self.consume(">"):
            raise MailError("mail: unclosed angle-addr")
        return [(name, spec)]

    def group(self) -> list[tuple[str, str]]:
        members: list[tuple[str, str]] = []
        self.skip_space()
        if self.consume(";"):
            self.skip_cfws()
            return members
        while True:
            self.skip_space()
            members.extend(self.address(False))
            if not self.skip_cfws():
                raise MailError("mail: misformatted parenthetical comment")
            if self.consume(";"):
                self.skip_cfws()
                return members
            if not self.consume(","):
                raise MailError("mail: expected comma")


def parse_address(text: str) -> tuple[str, str]:
    """net/mail.ParseAddress: (display name, address), the address with its local part unquoted
    (`"joe"@example.com` is `joe@example.com`); MailError otherwise."""
    parser = _MailParser(text)
    found = parser.address(True)
    if not parser.skip_cfws():
        raise MailError("mail: misformatted parenthetical comment")
    if parser.s:
        raise MailError(f"mail: expected single address, got {go_quote(parser.s)}")
    if not found:
        raise MailError("mail: empty group")
    if len(found) > 1:
        raise MailError("mail: group with multiple addresses")
    return found[0]


# -- net/url.Parse and URL.String (Go 1.13) ----------------------------------------------------------


class URLError(ValueError):
    """A net/url failure as Go 1.13 printed it: `parse :/: missing protocol scheme`."""


_HEX = b"0123456789abcdefABCDEF"
_UNRESERVED = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~")
_HOST_OK = frozenset(b"!$&'()*+,;=:[]<>\"")
_PATH, _HOST, _ZONE, _USER, _FRAGMENT = "path", "host", "zone", "user", "fragment"


def _should_escape(c: int, mode: str) -> bool:
    if c in _UNRESERVED:
        return False
    if mode in (_HOST, _ZONE) and c in _HOST_OK:
        return False
    if c in b"$&+,/:;=?@":
        if mode == _PATH:
            return c == ord("?")
        if mode == _USER:
            return c in b"@/?:"
        return mode != _FRAGMENT
    return not (mode == _FRAGMENT and c in b"!()*")


def _bquote(raw: bytes) -> str:
    return go_quote(raw.decode("utf-8", "surrogateescape"))


def _unescape(s: bytes, mode: str) -> bytes:
    i = 0
    out = bytearray()
    while i < len(s):
        c = s[i]
        if c == 0x25:  # %
            if i + 2 >= len(s) or s[i + 1] not in _HEX or s[i + 2] not in _HEX:
                raise ValueError(f"invalid URL escape {_bquote(s[i : i + 3])}")
            value = int(s[i + 1 : i + 3], 16)
            if mode == _HOST and value < 0x80 and s[i : i + 3] != b"%25":
                raise ValueError(f"invalid URL escape {_bquote(s[i : i + 3])}")
            if mode == _ZONE and s[i : i + 3] != b"%25" and value != 0x20 and _should_escape(value, _HOST):
                raise ValueError(f"invalid URL escape {_bquote(s[i : i + 3])}")
            out.append(value)
            i += 3
            continue
        if mode in (_HOST, _ZONE) and c < 0x80 and _should_escape(c, mode):
            raise ValueError(f"invalid character {_bquote(s[i : i + 1])} in host name")
        out.append(c)
        i += 1
    return bytes(out)


def _escape(s: bytes, mode: str) -> bytes:
    out = bytearray()
    for c in s:
        if _should_escape(c, mode):
            out += b"%%%02X" % c
        else:
            out.append(c)
    return bytes(out)


def _valid_port(port: bytes) -> bool:
    return port == b"" or (port[:1] == b":" and all(0x30 <= b <= 0x39 for b in port[1:]))


_USERINFO_OK = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._:~!$&'()*+,;=%@")


@dataclass
class URL:
    """The parts of a parsed URL, as bytes (Go's strings hold bytes, and %-escapes may not be UTF-8)."""

    scheme: bytes = b""
    opaque: bytes = b""
    user: tuple[bytes, bytes | None] | None = None  # (name, password or None)
    host: bytes = b""
    path: bytes = b""
    raw_path: bytes = b""
    force_query: bool = False
    raw_query: bytes = b""
    fragment: bytes = b""

    def hostname(self) -> bytes:
        return _split_host_port(self.host)[0]

    def port(self) -> bytes:
        return _split_host_port(self.host)[1]

    def escaped_path(self) -> bytes:
        if self.raw_path and _valid_encoded(self.raw_path):
            try:
                if _unescape(self.raw_path, _PATH) == self.path:
                    return self.raw_path
            except ValueError:
                pass
        if self.path == b"*":
            return b"*"
        return _escape(self.path, _PATH)

    def to_bytes(self) -> bytes:
        """URL.String()."""
        out = bytearray()
        if self.scheme:
            out += self.scheme + b":"
        if self.opaque:
            out += self.opaque
        else:
            if self.scheme or self.host or self.user is not None:
                if self.host or self.path or self.user is not None:
                    out += b"//"
                if self.user is not None:
                    name, password = self.user
                    out += _escape(name, _USER)
                    if password is not None:
                        out += b":" + _escape(password, _USER)
                    out += b"@"
                if self.host:
                    out += _escape(self.host, _HOST)
            path = self.escaped_path()
            if path and path[:1] != b"/" and self.host:
                out += b"/"
            if not out and b":" in path.partition(b"/")[0]:
                out += b"./"
            out += path
        if self.force_query or self.raw_query:
            out += b"?" + self.raw_query
        if self.fragment:
            out += b"#" + _escape(self.fragment, _FRAGMENT)
        return bytes(out)


def _valid_encoded(s: bytes) -> bool:
    return all(c in b"!$&'()*+,;=:@[]%" or not _should_escape(c, _PATH) for c in s)


def _split_host_port(host: bytes) -> tuple[bytes, bytes]:
    port = b""
    colon = host.rfind(b":")
    if colon >= 0 and _valid_port(host[colon:]):
        host, port = host[:colon], host[colon + 1 :]
    if host.startswith(b"[") and host.endswith(b"]"):
        host = host[1:-1]
    return host, port


def _parse_host(host: bytes) -> bytes:
    if host.startswith(b"["):
        end = host.rfind(b"]")
        if end < 0:
            raise ValueError("missing ']' in host")
        colon_port = host[end + 1 :]
        if not _valid_port(colon_port):
            raise ValueError(f"invalid port {_bquote(colon_port)} after host")
        zone = host[:end].find(b"%25")
        if zone >= 0:
            return (
                _unescape(host[:zone], _HOST)
                + _unescape(host[zone:end], _ZONE)
                + _unescape(host[end:], _HOST)
            )
    else:
        colon = host.rfind(b":")
        if colon >= 0 and not _valid_port(host[colon:]):
            raise ValueError(f"invalid port {_bquote(host[colon:])} after host")
    return _unescape(host, _HOST)


def _scheme(raw: bytes) -> tuple[bytes, bytes]:
    for i, c in enumerate(raw):
        if 0x61 <= c <= 0x7A or 0x41 <= c <= 0x5A:
            continue
        if 0x30 <= c <= 0x39 or c in b"+-.":
            if i == 0:
                return b"", raw
            continue
        if c == 0x3A:  # :
            if i == 0:
                raise ValueError("missing protocol scheme")
            return raw[:i], raw[i + 1 :]
        return b"", raw
    return b"", raw


def _parse(raw: bytes) -> URL:
    if any(c < 0x20 or c == 0x7F for c in raw):
        raise ValueError("net/url: invalid control character in URL")
    url = URL()
    if raw == b"*":
        url.path = b"*"
        return url
    scheme, rest = _scheme(raw)
    url.scheme = scheme.lower()
    if rest.endswith(b"?") and rest.count(b"?") == 1:
        url.force_query, rest = True, rest[:-1]
    else:
        rest, _, url.raw_query = rest.partition(b"?")
    if not rest.startswith(b"/"):
        if url.scheme:
            url.opaque = rest  # a rootless path: opaque data
            return url
        if b":" in rest.partition(b"/")[0]:
            raise ValueError("first path segment in URL cannot contain colon")
    if (url.scheme or not rest.startswith(b"///")) and rest.startswith(b"//"):
        authority, slash, path = rest[2:].partition(b"/")
        rest = slash + path
        at = authority.rfind(b"@")
        url.host = _parse_host(authority[at + 1 :] if at >= 0 else authority)
        if at >= 0:
            info = authority[:at]
            if not all(c in _USERINFO_OK for c in info):
                raise ValueError("net/url: invalid userinfo")
            name, colon, password = info.partition(b":")
            url.user = (_unescape(name, _USER), _unescape(password, _USER) if colon else None)
    url.path = _unescape(rest, _PATH)
    url.raw_path = b"" if _escape(url.path, _PATH) == rest else rest
    return url


def parse_url(text: str) -> URL:
    """net/url.Parse, with Go 1.13's error texts (URLError)."""
    raw = text.encode("utf-8", "surrogatepass")
    before, hash_, fragment = raw.partition(b"#")
    try:
        url = _parse(before)
    except ValueError as e:
        raise URLError(f"parse {before.decode('utf-8', 'replace')}: {e}") from None
    if hash_:
        try:
            url.fragment = _unescape(fragment, _FRAGMENT)
        except ValueError as e:
            raise URLError(f"parse {text}: {e}") from None
    return url
