"""Building HTML with everything escaped unless it is already markup.

Rule names, YAML, node ids and error texts come from users and proxies, so no text reaches the page
without `escape`: `el(tag, *children, **attrs)` escapes every child and attribute value that is not a
`Markup` already. Tag and attribute names come from code only.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any


class Markup(str):
    """Text that is HTML already (made by `el`, `escape` or `join`): never escaped again."""

    __slots__ = ()


Child = Any  # Markup, text (escaped), a number, None (nothing), or an iterable of children


def escape(value: Any) -> Markup:
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def join(children: Iterable[Child], separator: str = "") -> Markup:
    return Markup(escape(separator).join(_render(c) for c in children))


def _render(child: Child) -> str:
    if child is None or child is False:
        return ""
    if isinstance(child, str | int | float):
        return escape(child)
    return "".join(_render(c) for c in child)


_VOID = frozenset({"br", "hr", "input", "meta", "link", "img", "wbr"})


def el(tag: str, *children: Child, **attrs: Any) -> Markup:
    """`<tag attrs>children</tag>`. An attribute named `class_` is `class`, `_` in names become `-`;
    None and False leave an attribute out, True writes it bare."""
    parts = [tag]
    for name, value in attrs.items():
        if value is None or value is False:
            continue
        name = "class" if name == "class_" else name.replace("_", "-")
        parts.append(name if value is True else f'{name}="{escape(value)}"')
    opening = f"<{' '.join(parts)}>"
    if tag in _VOID:
        return Markup(opening)
    return Markup(f"{opening}{_render(children)}</{tag}>")


def anchor(kind: str, name: str) -> str:
    """A stable element id for a named thing (a handler, a domain): its name is user text, so hashed."""
    return f"{kind}-{hashlib.sha1(name.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"


def when(text: str | None, now: datetime) -> Markup:
    """An ISO time (UTC) as `<time>`: the time, and how long ago it was."""
    if not text:
        return el("span", "never", class_="dim")
    at = datetime.fromisoformat(text)
    seconds = (now - at).total_seconds()
    return el(
        "time",
        at.strftime("%Y-%m-%d %H:%M:%S"),
        el("span", f" {_ago(seconds)}", class_="dim"),
        datetime=text,
        title=text,
    )


def _ago(seconds: float) -> str:
    if seconds < 0:
        return "(from now)"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"({int(seconds // size)}{unit} ago)"
    return f"({int(seconds)}s ago)"


def iso(ns: int) -> str | None:
    """Clock nanoseconds as ISO 8601 UTC with milliseconds (what the JSON twins carry); None for 0."""
    if not ns:
        return None
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def badge(text: str, tone: str) -> Markup:
    """A small coloured label; `tone` is ok, bad, warn or dim."""
    return el("span", text, class_=f"badge {tone}")


def facts(pairs: Iterable[tuple[str, Child]]) -> Markup:
    """A row of labelled values (a summary above a view's tables)."""
    return el("dl", [el("div", el("dt", label), el("dd", value)) for label, value in pairs], class_="facts")


def table(headers: Iterable[str], rows: Iterable[Iterable[Child]], *, empty: str, class_: str = "") -> Markup:
    """A table, or a line saying `empty` when there are no rows."""
    body = [el("tr", [el("td", cell) for cell in row]) for row in rows]
    if not body:
        return el("p", empty, class_="empty")
    head = el("thead", el("tr", [el("th", h) for h in headers]))
    return el("table", head, el("tbody", body), class_=f"grid {class_}".strip())
