"""Which entries of a config folder are config files, their fingerprint, and reading one within limits.

Every `*.yaml` / `*.yml` entry counts, whatever it turns out to be, so that a FIFO, a device, a folder
or a broken symlink with such a name is reported rather than skipped (skipped, it would surface only
at the next edit or restart). Only regular files are read, and never more than the size limit: a FIFO
would block its reader forever, `/dev/zero` would fill memory.

Hidden entries are skipped: a Kubernetes ConfigMap mount keeps the real files in a hidden
`..2026_11_20/` folder (and a hidden `..data` symlink to it) and shows them through symlinks at the
top, so each file is read once. Symlinked folders are followed, each real folder once (no loops).
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ..settings import Settings

SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """How much of a config folder is read: bytes per file, and bytes of all files together."""

    max_file_bytes: int
    max_total_bytes: int

    @classmethod
    def of(cls, settings: Settings) -> ReadLimits:
        return cls(settings.config_max_file_bytes, settings.config_max_total_bytes)


DEFAULT_LIMITS = ReadLimits.of(Settings())


class Unreadable(Exception):
    """A config file that is not read; the message says why (it follows the file's name)."""


def config_files(folder: Path) -> list[Path]:
    """The folder's config entries (named *.yaml / *.yml, not hidden), in path order. A folder named
    like a config file is listed, not walked: reading it reports it."""
    found = []
    seen_dirs: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:  # a symlink back to a folder already walked
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        named = [d for d in dirnames if _is_config_name(d)]
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in named)
        found.extend(Path(dirpath, name) for name in [*filenames, *named] if _is_config_name(name))
    return sorted(found)


def _is_config_name(name: str) -> bool:
    return name.endswith(SUFFIXES) and not name.startswith(".")


Fingerprint = tuple[tuple[str, str, int, int], ...]


def fingerprint(folder: Path) -> Fingerprint:
    """A cheap summary of the folder's config entries that changes whenever one of them may have changed
    (path, symlink target, size and modification time of each); the watcher compares these. Nothing is
    opened. A broken symlink is in it too (its target and the error), so adding one is a change."""
    out = []
    for path in config_files(folder):
        try:
            st = path.stat()
            real = os.path.realpath(path)
        except OSError as e:
            try:
                target = os.readlink(path)
            except OSError:
                continue  # vanished between listing and stat; the next poll sees the new state
            out.append((str(path), f"broken symlink to {target}", -1, e.errno or 0))
            continue
        out.append((str(path), real, st.st_size, st.st_mtime_ns))
    return tuple(out)


def read_config_file(path: Path, max_bytes: int) -> bytes:
    """The file's bytes; Unreadable when it is not a regular file (or a symlink to one), is larger than
    `max_bytes`, or cannot be read.

    It is checked with stat before it is opened, opened non-blocking (so an entry swapped for a FIFO
    after the check cannot block the open), and checked again on the open descriptor; at most
    `max_bytes + 1` bytes are read, so a file that grows meanwhile is refused too.
    """
    try:
        st = os.stat(path)
    except OSError as e:
        raise Unreadable(_stat_problem(path, e)) from None
    _check(st, max_bytes)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as e:
        raise Unreadable(f"cannot open the file: {e.strerror}") from None
    try:
        _check(os.fstat(fd), max_bytes)  # what was opened, which may not be what was checked
        chunks: list[bytes] = []
        left = max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as e:
        raise Unreadable(f"cannot read the file: {e.strerror}") from None
    finally:
        os.close(fd)
    if left <= 0:
        raise Unreadable(f"larger than the {max_bytes}-byte limit (config_max_file_bytes)")
    return b"".join(chunks)


def _check(st: os.stat_result, max_bytes: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise Unreadable(f"not a regular file ({_kind(st.st_mode)}); only regular files are read")
    if st.st_size > max_bytes:
        raise Unreadable(f"{st.st_size} bytes, more than the {max_bytes}-byte limit (config_max_file_bytes)")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "of another kind"


def _stat_problem(path: Path, e: OSError) -> str:
    try:
        target = os.readlink(path)
    except OSError:
        target = None
    if target is not None and e.errno == errno.ENOENT:
        return f"a broken symlink: nothing exists at its target {target!r}"
    if e.errno == errno.ELOOP:
        via = f" (via {target!r})" if target is not None else " in its path"
        return f"a symlink loop{via}: following it never reaches a file"
    return f"cannot read the file: {e.strerror}"
