"""Reading a config folder: every *.yaml / *.yml file under it, split into YAML documents.

Hidden files and folders are skipped: a Kubernetes ConfigMap mount keeps the real files in a hidden
`..2026_11_20/` folder (and a hidden `..data` symlink to it) and shows them through symlinks at the top,
so each file is read once. Symlinked folders are followed, each real folder once (no symlink loops).

Each document of a file is parsed on its own (a file is cut at its `---` lines), so a syntax error
spoils only its document and is reported with its line and column; a key written twice in one mapping
is an error too (YAML would silently keep the last one).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

_SUFFIXES = (".yaml", ".yml")
#: A line that starts a new document: `---` alone or followed by blanks and content.
_DOCUMENT_START = re.compile(r"^---(?=[ \t]|$)", re.MULTILINE)
#: Lines that make cutting at `---` unsafe (directives, document end markers): such a file is parsed whole.
_UNSPLITTABLE = re.compile(r"^(%|\.\.\.(?=[ \t]|$))", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML document of a config file."""

    file: str  # relative to the folder
    number: int  # 1-based within the file
    data: Any


def config_files(folder: Path) -> Iterator[Path]:
    """The config files under `folder`, in path order, hidden ones left out."""
    found = []
    seen_dirs: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:  # a symlink back to a folder already walked
            dirnames[:] = []
            continue
        seen_dirs.add(real)
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
    """Every non-empty document in the folder's config files, and the problems reading them."""
    documents: list[Document] = []
    errors: list[ConfigError] = []
    for path in config_files(folder):
        rel = path.relative_to(folder).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            errors.append(ConfigError(rel, f"cannot read the file: {e}"))
            continue
        documents.extend(split_documents(rel, text, errors))
    return documents, errors


def split_documents(file: str, text: str, errors: list[ConfigError]) -> list[Document]:
    """The non-empty documents of one file's text; each bad document is reported in `errors`."""
    docs: list[Document] = []
    number = 0
    for first_line, chunk, explicit in _chunks(text):
        if not explicit and not _has_content(chunk):
            continue  # comments before the first `---` are not a document
        padded = "\n" * first_line + chunk  # so that error marks carry the file's line numbers
        try:
            parsed = list(yaml.load_all(padded, Loader=_StrictLoader))
        except yaml.YAMLError as e:
            number += 1
            errors.append(ConfigError(file, _describe(e), document=number))
            continue
        for data in parsed or [None]:
            number += 1
            if data is not None:
                docs.append(Document(file, number, data))
    return docs


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
    where = f"line {mark.line + 1} column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(e, "problem", None) or str(e)
    return f"YAML syntax error: {where}{problem}"


_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when installed


class _StrictLoader(_BaseLoader):
    """YAML's safe loader, except that a mapping key written twice is an error."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)
            try:
                earlier = seen.setdefault(key, key_node)
            except TypeError:  # an unhashable key; the base class reports it
                continue
            if earlier is not key_node:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} is given twice in one mapping "
                    f"(first on line {earlier.start_mark.line + 1})",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep)  # type: ignore[no-any-return]
