"""The page around a view: header (version, generation, uptime), nav between views, the view's JSON twins."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from ... import __version__
from .html import Markup, el, when
from .style import CSS, SCRIPT
from .views import View


def page(
    view: View | None,
    views: Sequence[View],
    body: Markup,
    *,
    title: str,
    facts: Mapping[str, str | int | None],
    now: datetime,
) -> str:
    """A whole HTML document: `body` under the nav, with `view` marked as the one shown."""
    nav = el(
        "nav",
        [
            el(
                "a",
                v.title,
                el("span", str(i), class_="key") if i < 10 else None,
                href=f"/{v.slug}",
                class_="here" if v is view else None,
                data_key=str(i) if i < 10 else None,
                aria_current="page" if v is view else None,
            )
            for i, v in enumerate(views, 1)
        ],
    )
    header = el(
        "header",
        el("div", "mixerd ", el("span", "admin"), class_="brand"),
        el(
            "div",
            "version ",
            el("b", __version__),
            " · config generation ",
            el("b", facts.get("generation", 0)),
            " · serving since ",
            when(facts.get("started_at"), now) if facts.get("started_at") else "?",
            class_="meta",
        ),
        el("div", "pid ", el("b", facts.get("pid", "")), " · ", facts.get("where", ""), class_="meta"),
    )
    twins = (
        el(
            "div",
            "JSON: ",
            [(el("a", f"/debug/{t.name}", href=f"/debug/{t.name}"), " ") for t in view.twins],
            class_="twin",
        )
        if view is not None and view.twins
        else None
    )
    document = el(
        "html",
        el(
            "head",
            el("meta", charset="utf-8"),
            el("meta", name="viewport", content="width=device-width, initial-scale=1"),
            el("title", f"{title} · mixerd admin"),
            el("style", Markup(CSS)),
        ),
        el(
            "body",
            header,
            nav,
            el("main", twins, el("h1", title), body),
            el("footer", "Everything here is also JSON under ", el("a", "/debug/", href="/debug/"), "."),
            el("script", Markup(SCRIPT)),
        ),
        lang="en",
    )
    return "<!DOCTYPE html>\n" + document
