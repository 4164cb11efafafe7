"""Reading a config folder: every config file under it (files.py: which, and within which limits),
split into YAML documents (yaml_limits.py: strict and bounded).

Each document of a file is parsed on its own (a file is cut at its `---` lines), so a syntax error
spoils only its document and is reported with its line and column; a key written twice in one mapping
is an error too (YAML would silently keep the last one). A Kubernetes list (`kind: List`, what
`kubectl get -o yaml` writes) stands for its items, each a document of its own (lists.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .files import DEFAULT_LIMITS, ReadLimits, Unreadable, config_files, fingerprint, read_config_file
from .lists import list_items
from .yaml_limits import AliasBudget, YamlLimitError, load_all

__all__ = [
    "Document",
    "FileRead",
    "FolderRead",
    "config_files",
    "fingerprint",
    "read_documents",
    "read_folder",
    "split_documents",
]

#: A line that starts a new document: `---` alone or followed by blanks and content.
_DOCUMENT_START = re.compile(r"^---(?=[ \t]|$)", re.MULTILINE)
#: Lines that make cutting at `---` unsafe (directives, document end markers): such a file is parsed whole.
_UNSPLITTABLE = re.compile(r"^(%|\.\.\.(?=[ \t]|$))", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML document of a config file, or one item of a list document."""

    file: str  # relative to the folder
    number: int  # 1-based within the file
    data: Any
    item: int | None = None  # the index in the list document's `items`
    #: The document as written (comments kept, no `---` line), for people to read (the admin page); a
    #: list's item as YAML of its own.
    text: str = field(default="", compare=False, repr=False)

    @property
    def where(self) -> str:
        """`file (document 2)`, or `file (document 1, items[3])` for a list's item."""
        item = f", items[{self.item}]" if self.item is not None else ""
        return f"{self.file} (document {self.number}{item})"


@dataclass(frozen=True, slots=True)
class FileRead:
    """A config file as it was read: its size and modification time then."""

    path: str  # relative to the folder
    size: int
    mtime_ns: int  # 0 when it could not be told


@dataclass(frozen=True, slots=True)
class FolderRead:
    """What one read of a config folder found: documents, problems, and the files read."""

    documents: list[Document]
    errors: list[ConfigError]
    files: list[FileRead]


def read_documents(
    folder: Path, limits: ReadLimits = DEFAULT_LIMITS
) -> tuple[list[Document], list[ConfigError]]:
    """Every non-empty document in the folder's config files, and the problems reading them."""
    read = read_folder(folder, limits)
    return read.documents, read.errors


def read_folder(folder: Path, limits: ReadLimits = DEFAULT_LIMITS) -> FolderRead:
    """Every non-empty document in the folder's config files, the problems reading them, and the files
    read (with their size and modification time)."""
    documents: list[Document] = []
    errors: list[ConfigError] = []
    files: list[FileRead] = []
    budget = AliasBudget()
    total = 0
    for path in config_files(folder):
        rel = path.relative_to(folder).as_posix()
        try:
            data = read_config_file(path, limits.max_file_bytes)
        except Unreadable as e:
            errors.append(ConfigError(rel, str(e)))
            continue
        files.append(FileRead(rel, len(data), _mtime_ns(path)))
        total += len(data)
        if total > limits.max_total_bytes:
            errors.append(
                ConfigError(
                    rel,
                    f"the config files up to this one total {total} bytes, more than the "
                    f"{limits.max_total_bytes}-byte limit (config_max_total_bytes); the rest were not read",
                )
            )
            break
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            errors.append(ConfigError(rel, f"cannot read the file: not UTF-8 text: {e}"))
            continue
        text = text.replace("\r\n", "\n").replace("\r", "\n")  # as text mode reads it
        documents.extend(split_documents(rel, text, errors, budget))
    return FolderRead(documents, errors, files)


def _mtime_ns(path: Path) -> int:
    # Shown to people only (when was this file last changed); the fingerprint is what watches.
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def split_documents(
    file: str, text: str, errors: list[ConfigError], budget: AliasBudget | None = None
) -> list[Document]:
    """The non-empty documents of one file's text; each bad document is reported in `errors`. Aliases
    spend `budget` (shared by the files of one config read; a fresh one when not given)."""
    budget = budget if budget is not None else AliasBudget()
    docs: list[Document] = []
    number = 0
    for first_line, chunk, explicit in _chunks(text):
        if not explicit and not _has_content(chunk):
            continue  # comments before the first `---` are not a document
        padded = "\n" * first_line + chunk  # so that error marks carry the file's line numbers
        spans: list[tuple[int, int]] = []
        try:
            parsed = list(load_all(padded, budget, spans))
        except RecursionError:  # only the pure-Python parser recurses; libyaml stops at 1000 levels
            number += 1
            errors.append(ConfigError(file, "YAML nested too deeply to parse", document=number))
            continue
        except yaml.YAMLError as e:
            number += 1
            errors.append(ConfigError(file, _describe(e), document=number))
            continue
        for i, data in enumerate(parsed or [None]):
            number += 1
            if data is not None:
                written = _written(chunk, padded, spans, i, len(parsed))
                items = list_items(data, file, number, errors)
                if items is None:
                    docs.append(Document(file, number, data, text=written))
                else:
                    docs.extend(
                        Document(file, number, item, index, text=yaml.safe_dump(item, sort_keys=False))
                        for index, item in items
                    )
    return docs


def _written(chunk: str, padded: str, spans: list[tuple[int, int]], index: int, count: int) -> str:
    """Document `index` of a chunk as written: the whole chunk (its comments too) when it holds one
    document, else the document's own span."""
    if count == 1:
        if chunk.startswith("---"):
            chunk = chunk[3:].lstrip(" \t")
        return chunk.strip("\n").rstrip() + "\n"
    start, end = spans[index] if index < len(spans) else (0, 0)
    return padded[start:end].strip("\n").rstrip() + "\n"


def _chunks(text: str) -> Iterator[tuple[int, str, bool]]:
    """(first line number, text, starts with `---`) of each document of `text`."""
    if _UNSPLITTABLE.search(text):
        yield 0, text, False
        return
    starts = [m.start() for m in _DOCUMENT_START.finditer(text)]
    bounds = [0, *starts] if not starts or starts[0] != 0 else starts
    for i, start in enumerate(bounds):
        end = bounds[i + 1] if i + 1 < len(bounds) else len(text)
        yield text.count("\n", 0, start), text[start:end], start in starts


def _has_content(chunk: str) -> bool:
    return any(line.strip() and not line.lstrip().startswith("#") for line in chunk.splitlines())


def _describe(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    if isinstance(e, YamlLimitError):
        return problem if mark is None else f"{problem} (line {mark.line + 1} column {mark.column + 1})"
    where = f"line {mark.line + 1} column {mark.column + 1}: " if mark is not None else ""
    return f"YAML syntax error: {where}{problem}"
