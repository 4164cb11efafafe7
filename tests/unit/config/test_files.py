"""Which config entries are read and within which limits: only regular files (a FIFO, device, socket,
folder or broken symlink named like a config file is a config error), never more than the size limits,
and the watcher's fingerprint sees every such entry without opening it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from mixerd.config import ReadLimits, fingerprint, read_documents
from mixerd.config import files as files_module
from mixerd.config.files import Unreadable, config_files, read_config_file

RULE = "apiVersion: config.istio.io/v1alpha2\nkind: rule\nmetadata: {name: %s}\n"
LIMITS = ReadLimits(max_file_bytes=1000, max_total_bytes=10_000)

# A hang here is the bug under test: fail in seconds instead of the suite's two minutes.
pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "socket.yaml"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        yield path


def problems(folder: Path, limits: ReadLimits = LIMITS) -> list[str]:
    return [str(e) for e in read_documents(folder, limits)[1]]


def test_only_regular_files_are_read_and_nothing_else_is_opened(tmp_path: Path, unix_socket: Path) -> None:
    os.mkfifo(tmp_path / "fifo.yaml")  # opened for reading, it would block until a writer came
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")  # read, it would never end
    (tmp_path / "folder.yml").mkdir()
    (tmp_path / "folder.yml" / "inside.yaml").write_text(RULE % "inside")  # not walked: the folder is refused
    (tmp_path / "ok.yaml").write_text(RULE % "ok")
    documents, errors = read_documents(tmp_path, LIMITS)
    assert [d.file for d in documents] == ["ok.yaml"]
    assert [str(e) for e in errors] == [
        "fifo.yaml: not a regular file (a FIFO); only regular files are read",
        "folder.yml: not a regular file (a folder); only regular files are read",
        "socket.yaml: not a regular file (a socket); only regular files are read",
        "zero.yaml: not a regular file (a character device); only regular files are read",
    ]


def test_broken_symlinks_are_config_errors_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "dangling.yaml").symlink_to("gone.yaml")
    (tmp_path / "self.yaml").symlink_to("self.yaml")
    (tmp_path / "ping.yaml").symlink_to("pong.yaml")
    (tmp_path / "pong.yaml").symlink_to("ping.yaml")
    assert problems(tmp_path) == [
        "dangling.yaml: a broken symlink: nothing exists at its target 'gone.yaml'",
        "ping.yaml: a symlink loop (via 'pong.yaml'): following it never reaches a file",
        "pong.yaml: a symlink loop (via 'ping.yaml'): following it never reaches a file",
        "self.yaml: a symlink loop (via 'self.yaml'): following it never reaches a file",
    ]


def test_a_symlink_to_a_regular_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "real.txt").write_text(RULE % "linked")
    (tmp_path / "linked.yaml").symlink_to(tmp_path / "elsewhere" / "real.txt")
    documents, errors = read_documents(tmp_path, LIMITS)
    assert errors == []
    assert [(d.file, d.data["metadata"]["name"]) for d in documents] == [("linked.yaml", "linked")]


def test_a_file_over_the_size_limit_is_refused_without_being_read(tmp_path: Path) -> None:
    (tmp_path / "big.yaml").write_text("# " + "x" * 999 + "\n")  # 1002 bytes
    (tmp_path / "exact.yaml").write_text("#" * 999 + "\n")  # 1000 bytes: at the limit is fine
    assert problems(tmp_path) == [
        "big.yaml: 1002 bytes, more than the 1000-byte limit (config_max_file_bytes)"
    ]


def test_reading_stops_at_the_limit_when_the_size_was_not_known(tmp_path: Path) -> None:
    # procfs files say they are 0 bytes long, like a file that grows after it was checked
    (tmp_path / "status.yaml").symlink_to("/proc/self/status")
    with pytest.raises(Unreadable) as info:
        read_config_file(tmp_path / "status.yaml", 100)
    assert str(info.value) == "larger than the 100-byte limit (config_max_file_bytes)"


def test_an_entry_swapped_for_a_fifo_after_the_check_does_not_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    regular = tmp_path / "regular"
    regular.write_text("a: 1\n")
    fifo = tmp_path / "swapped.yaml"
    os.mkfifo(fifo)
    real_stat = os.stat
    # the check sees a regular file; the open then finds the FIFO that replaced it
    monkeypatch.setattr(files_module.os, "stat", lambda p, **kw: real_stat(regular if p == fifo else p, **kw))
    with pytest.raises(Unreadable) as info:
        read_config_file(fifo, 1000)
    assert str(info.value) == "not a regular file (a FIFO); only regular files are read"


def test_the_folder_total_limit_stops_reading(tmp_path: Path) -> None:
    for name in "abc":
        (tmp_path / f"{name}.yaml").write_text(RULE % name)
    size = len(RULE % "a")
    documents, errors = read_documents(tmp_path, ReadLimits(1000, 2 * size + 1))
    assert [d.file for d in documents] == ["a.yaml", "b.yaml"]
    assert [str(e) for e in errors] == [
        f"c.yaml: the config files up to this one total {3 * size} bytes, more than the "
        f"{2 * size + 1}-byte limit (config_max_total_bytes); the rest were not read"
    ]


def test_entries_named_like_config_files_are_listed_whatever_they_are(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.yaml")
    (tmp_path / "dir.yaml").mkdir()
    (tmp_path / "dangling.yml").symlink_to("gone")
    (tmp_path / "notes.txt").write_text("")
    assert [p.name for p in config_files(tmp_path)] == ["dangling.yml", "dir.yaml", "fifo.yaml"]


def test_the_fingerprint_sees_broken_symlinks_appear_and_change(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(RULE % "ok")
    os.mkfifo(tmp_path / "fifo.yaml")  # stat only: a fingerprint never opens an entry
    before = fingerprint(tmp_path)
    (tmp_path / "dangling.yaml").symlink_to("gone.yaml")
    dangling = fingerprint(tmp_path)
    assert dangling != before
    assert [entry[:2] for entry in dangling if entry[0].endswith("dangling.yaml")] == [
        (str(tmp_path / "dangling.yaml"), "broken symlink to gone.yaml")
    ]
    (tmp_path / "dangling.yaml").unlink()
    (tmp_path / "dangling.yaml").symlink_to("dangling.yaml")  # now a loop
    assert fingerprint(tmp_path) not in (before, dangling)
