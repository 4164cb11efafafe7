"""The docs stand alone: every relative link in the repository's Markdown points at a file or folder that
exists inside the repository, and no doc sends the reader to files that only exist beside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: `[text](target)` and `[text](target "title")`; the target up to a space, `)` or `#`.
_LINK = re.compile(r"\]\(([^)\s#]*)(?:#[^)\s]*)?(?:\s+\"[^\"]*\")?\)")
#: Files the team keeps beside the repository (its design notes and reference facts), not in it.
_OUTSIDE = re.compile(r"\.\./shared\b|\b(?:DESIGN|MIXER|ENVOY|PEERS)\.md\b")


def _markdown_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [REPO / name for name in listed if (REPO / name).is_file()]


DOCS = _markdown_files()


def test_there_are_docs_to_check() -> None:
    names = {p.relative_to(REPO).as_posix() for p in DOCS}
    assert {"README.md", "DEVELOPERS.md", "docs/config.md", "docs/adapters.md"} <= names


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_stay_inside_the_repository_and_exist(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    broken = []
    for target in _LINK.findall(text):
        if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target):  # an anchor only, or a URL
            continue
        resolved = (doc.parent / target).resolve()
        if not resolved.is_relative_to(REPO) or not resolved.exists():
            broken.append(target)
    assert broken == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_doc_refers_to_files_beside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    assert [m.group(0) for m in _OUTSIDE.finditer(text)] == []
