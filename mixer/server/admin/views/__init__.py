"""The admin page's views, in nav order, and the JSON twins they show.

A `View` is one page of the app (`/<slug>`, a nav entry); it shows the data of one or more `Twin`s, each
also served as JSON at `/debug/<name>` for scripts. The HTML is made from exactly that data, so the
page never shows what the JSON does not carry. To add a view: a module with its twins' data functions
and a `render`, and one entry in VIEWS.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..context import AdminContext
from ..html import Markup

Data = dict[str, Any]


@dataclass(frozen=True)
class Twin:
    """One JSON endpoint, `/debug/<name>`."""

    name: str
    data: Callable[[AdminContext], Data]
    description: str


@dataclass(frozen=True)
class View:
    """One page: `/<slug>`, titled `title` in the nav; `render` gets {twin name: its data} and now."""

    slug: str
    title: str
    twins: tuple[Twin, ...]
    render: Callable[[Mapping[str, Data], datetime], Markup]


def _views() -> tuple[View, ...]:
    from . import accesslog, adapters, config, decisions, explain, quotas, ratelimits, routes

    return (
        config.VIEW,
        routes.VIEW,
        adapters.VIEW,
        quotas.VIEW,
        ratelimits.VIEW,
        accesslog.VIEW,
        decisions.VIEW,
        explain.VIEW,
    )


VIEWS: tuple[View, ...] = _views()
TWINS: Mapping[str, Twin] = {twin.name: twin for view in VIEWS for twin in view.twins}
