"""Reading a config folder: every *.yaml / *.yml file under it, split into YAML documents.

Hidden files and folders are skipped: a Kubernetes ConfigMap mount keeps the real files in a hidden
`..data` folder and shows them through symlinks at the top, so each file is read once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML document of a config file."""

    file: str  # relative to the folder
    number: int  # 1-based within the file
    data: Any


def config_files(folder: Path) -> Iterator[Path]:
    """The config files under `folder`, in path order, hidden ones left out."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.endswith(_SUFFIXES) and not name.startswith("."):
                found.append(Path(dirpath, name))
    yield from sorted(found)


def fingerprint(folder: Path) -> tuple[tuple[str, str, int, int], ...]:
    """A cheap summary of the folder's config files that changes whenever one of them may have changed
    (path, symlink target, size and modification time of each); the watcher compares these."""
    out = []
    for path in config_files(folder):
        try:
            stat = path.stat()
            real = os.path.realpath(path)
        except OSError:
            continue  # vanished between listing and stat; the next poll sees the new state
        out.append((str(path), real, stat.st_size, stat.st_mtime_ns))
    return tuple(out)


def read_documents(folder: Path) -> tuple[list[Document], list[ConfigError]]:
    """Every non-empty document in the folder's config files, and the files that could not be read."""
    documents: list[Document] = []
    errors: list[ConfigError] = []
    for path in config_files(folder):
        rel = str(path.relative_to(folder))
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            errors.append(ConfigError(rel, f"cannot read the file: {e}"))
            continue
        documents.extend(_split(rel, text, errors))
    return documents, errors


def _split(file: str, text: str, errors: list[ConfigError]) -> list[Document]:
    docs = []
    try:
        for number, data in enumerate(yaml.safe_load_all(text), 1):
            if data is not None:
                docs.append(Document(file, number, data))
    except yaml.YAMLError as e:
        # A syntax error spoils the rest of the file; the documents before it are kept for reporting.
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        errors.append(ConfigError(file, f"YAML syntax error: {where}{problem}", document=len(docs) + 1))
    return docs
