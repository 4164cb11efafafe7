"""Config in force: generation, folder, files, every resource as written, and the last rejected change."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..context import AdminContext
from ..html import Markup, badge, el, facts, iso, table, when
from ..redact import redact
from . import Data, Twin, View


def config_data(ctx: AdminContext) -> Data:
    runtime = ctx.runtime
    if runtime is None:
        return {"generation": 0, "engine": False}
    snapshot = runtime.table.snapshot
    sources = snapshot.sources
    per_file: dict[str, int] = {}
    for r in sources.resources:
        per_file[r.file] = per_file.get(r.file, 0) + 1
    rejection = runtime.last_rejection
    return {
        "engine": True,
        "generation": runtime.generation,
        "loaded_at": iso(runtime.loaded_at),
        "folder": sources.folder or (str(runtime.folder) if runtime.folder is not None else None),
        "default_namespace": snapshot.default_namespace,
        "resources_by_kind": dict(snapshot.resources_by_kind),
        "files": [
            {
                "path": f.path,
                "size": f.size,
                "modified": iso(f.mtime_ns),
                "resources": per_file.get(f.path, 0),
            }
            for f in sources.files
        ],
        "resources": [
            {
                "kind": r.kind,
                "name": r.name,
                "namespace": r.namespace,
                "fqn": r.fqn,
                "file": r.file,
                "document": r.document,
                "yaml": redact(r.text),
            }
            for r in sources.resources
        ],
        "last_rejection": None
        if rejection is None
        else {
            "at": iso(runtime.last_rejection_at),
            "errors": [
                {
                    "file": e.file,
                    "document": e.document,
                    "kind": e.kind,
                    "resource": e.resource,
                    "path": e.path,
                    "reason": redact(e.reason),
                    "message": redact(str(e)),
                }
                for e in rejection.errors
            ],
        },
    }


def render(data: Mapping[str, Data], now: datetime) -> Markup:
    config = data["config"]
    if not config["engine"]:
        return el(
            "p", "This server runs no rule engine (a dispatcher of its own): no config.", class_="empty"
        )
    return el(
        "div",
        _summary(config, now),
        _rejection(config["last_rejection"], now),
        el("h2", "Files"),
        table(
            ("file", "size", "modified", "resources"),
            (
                (el("code", f["path"]), _size(f["size"]), when(f["modified"], now), f["resources"])
                for f in config["files"]
            ),
            empty="No config files.",
        ),
        el("h2", "Resources"),
        table(
            ("kind", "name", "namespace", "where", "as written"),
            (
                (
                    el("code", r["kind"]),
                    el("code", r["name"], class_="strong"),
                    r["namespace"],
                    el("code", f"{r['file']} #{r['document']}", class_="dim"),
                    el("details", el("summary", "YAML"), el("pre", r["yaml"])),
                )
                for r in config["resources"]
            ),
            empty="No resources.",
            class_="filterable",
        ),
    )


def _summary(config: Data, now: datetime) -> Markup:
    kinds = ", ".join(f"{kind} {count}" for kind, count in config["resources_by_kind"].items()) or "none"
    pairs = (
        ("generation", el("span", config["generation"], class_="big")),
        ("in force since", when(config["loaded_at"], now)),
        ("folder", el("code", config["folder"] or "none")),
        ("default namespace", el("code", config["default_namespace"])),
        ("resources", kinds),
    )
    return facts(pairs)


def _rejection(rejection: dict[str, Any] | None, now: datetime) -> Markup:
    if rejection is None:
        return el("p", badge("ok", "ok"), " No change rejected since this config was put in force.")
    errors = rejection["errors"]
    return el(
        "section",
        el(
            "h2",
            badge("rejected", "bad"),
            f" Last change rejected with {len(errors)} problem{'s' if len(errors) != 1 else ''} ",
            when(rejection["at"], now),
        ),
        el("p", "Nothing of it took effect: the config above keeps serving."),
        table(
            ("file", "document", "resource", "path", "problem"),
            (
                (
                    el("code", e["file"], class_="strong"),
                    e["document"] or "",
                    el("code", f"{e['kind']} {e['resource']}") if e["resource"] else "",
                    el("code", e["path"]),
                    e["reason"],
                )
                for e in errors
            ),
            empty="",
        ),
        class_="rejection",
        id="last-rejection",
    )


def _size(size: int) -> str:
    return f"{size} B" if size < 1024 else f"{size / 1024:.1f} KiB"


VIEW = View(
    "config",
    "Config",
    (Twin("config", config_data, "the config in force: files, resources as written, last rejection"),),
    render,
)
