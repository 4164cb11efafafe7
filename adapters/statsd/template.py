"""Metric name templates: the part of Go's text/template that Mixer's statsd configs use.

A template is literal text with `{{.dimension}}` references (`{{.apiMethod}}-{{.responseCode}}`);
spaces inside the braces and Go's trim markers (`{{- .x -}}`, which remove the white space on that
side) are accepted. Anything else Go's templates can do (pipelines, functions, `if`, `range`) is
refused when the config is read, so a name never depends on something mixerd cannot render.

A value is rendered as Go's `%v` prints it (so names match Mixer's), except IP addresses, which print
as text (`10.0.0.1`) where Mixer printed the raw bytes (`[10 0 0 1]`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mixerd.adapter import Duration, Timestamp, ip_text

_ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_REFERENCE = re.compile(r"\.([^\W\d]\w*)")  # a Go identifier after the dot
_TRIM_SPACE = " \t\r\n"  # what Go's trim markers remove
#: Characters that would break a statsd line (`name:value|type`); replaced by `_` in rendered values.
_UNSAFE = str.maketrans({":": "_", "|": "_", "\n": "_", "\r": "_"})
NO_VALUE = "<no value>"  # what Go prints for a key the map does not have


class TemplateError(ValueError):
    """A name template mixerd cannot render; the message says why."""


@dataclass(frozen=True)
class NameTemplate:
    """A parsed template: literal strings and dimension names, in order."""

    parts: tuple[tuple[bool, str], ...]  # (is a dimension reference, literal text or dimension name)

    @property
    def references(self) -> tuple[str, ...]:
        return tuple(text for is_ref, text in self.parts if is_ref)

    def render(self, dimensions: Mapping[str, Any]) -> str:
        out: list[str] = []
        for is_ref, text in self.parts:
            if not is_ref:
                out.append(text)
            elif text in dimensions:
                out.append(go_text(dimensions[text]).translate(_UNSAFE))
            else:
                out.append(NO_VALUE)
        return "".join(out)


def parse(text: str) -> NameTemplate:
    """Parse `text`, or raise TemplateError naming the first action mixerd cannot render."""
    parts: list[tuple[bool, str]] = []
    pending = ""  # literal text not yet added (a trim marker may still cut its end)
    at = 0
    trim_next = False
    for match in _ACTION.finditer(text):
        literal = text[at : match.start()]
        if trim_next:
            literal = literal.lstrip(_TRIM_SPACE)
        body = match.group(1)
        if body.startswith("-") and body[1:2] in tuple(_TRIM_SPACE):
            literal = literal.rstrip(_TRIM_SPACE)
            body = body[2:]
        trim_next = body.endswith("-") and body[-2:-1] in tuple(_TRIM_SPACE)
        if trim_next:
            body = body[:-2]
        pending += literal
        reference = _REFERENCE.fullmatch(body.strip(_TRIM_SPACE))
        if reference is None:
            raise TemplateError(
                f"unsupported action {match.group(0)!r}: only {{{{.dimension}}}} references are supported"
            )
        if pending:
            parts.append((False, pending))
            pending = ""
        parts.append((True, reference.group(1)))
        at = match.end()
    rest = text[at:]
    if "{{" in rest:
        raise TemplateError(f"unclosed action {rest[rest.index('{{') :]!r}")
    pending += rest.lstrip(_TRIM_SPACE) if trim_next else rest
    if pending:
        parts.append((False, pending))
    return NameTemplate(tuple(parts))


# -- Go's %v -------------------------------------------------------------------------------------------


def go_text(value: Any) -> str:
    """`value` as Go's fmt `%v` prints the Go value Mixer had for it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Timestamp):
        return _go_time(value)
    if isinstance(value, Duration):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, bytes | bytearray):
        return _ip_text(bytes(value))
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_text(v)}" for k, v in sorted(value.items())) + "]"
    if value is None:
        return NO_VALUE
    return str(value)


def go_float(value: float) -> str:
    """Go's `%v` for a float64: the shortest digits, with an exponent below 1e-4 and from 1e6 on.

    (Go's `%v` is strconv's 'g' with the shortest precision, which switches to an exponent when the
    decimal exponent is < -4 or >= 6: `1e+06`, `123456.5`, `1e-05`.)
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    point = len(text) + exponent - 1  # the decimal exponent of the first digit
    head = "-" if sign else ""
    if point < -4 or point >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{head}{mantissa}e{'+' if point >= 0 else '-'}{abs(point):02d}"
    return head + format(Decimal(text).scaleb(exponent), "f")


def _go_time(value: Timestamp) -> str:
    """Go's time.Time.String() for a UTC time: `2006-01-02 15:04:05.999999999 +0000 UTC`."""
    text = value.isoformat()  # RFC 3339 with the fraction trimmed, ending in Z
    return text[:-1].replace("T", " ", 1) + " +0000 UTC"


def _ip_text(raw: bytes) -> str:
    if len(raw) in (4, 16):
        return ip_text(raw)
    return "[" + " ".join(str(b) for b in raw) + "]"  # Go's %v of a byte slice
