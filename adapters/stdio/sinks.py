"""Where stdio's lines go: stdout, stderr, a file, or a file rotated by size and age.

A sink is only used from one thread at a time (the handler holds a lock around it); it may block, so
the handler calls it off the event loop.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable

from .params import LogStream, Params

MEGABYTE = 1024 * 1024
#: The largest file size, in megabytes, before a ROTATED_FILE rotates. Mixer's default
#: (104857600, meant as 100 MiB in bytes but read as megabytes) would otherwise mean 100 TiB.
ROTATION_MEGABYTES_CAP = 1024
#: What 0 megabytes means, as in the rotation library Mixer used.
DEFAULT_ROTATION_MEGABYTES = 100

_DAY_NS = 86_400 * 1_000_000_000


class Sink:
    def write(self, lines: list[str]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class StandardStream(Sink):
    """stdout or stderr, looked up at every write (so a replaced sys.stdout is honoured); never closed."""

    def __init__(self, name: str) -> None:
        self.name = name

    def write(self, lines: list[str]) -> None:
        stream = getattr(sys, self.name)
        stream.write("".join(lines))
        stream.flush()

    def close(self) -> None:
        getattr(sys, self.name).flush()


class AppendFile(Sink):
    """A file opened for appending (created if missing)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = open(path, "ab")  # noqa: SIM115 - kept open for the handler's life

    def write(self, lines: list[str]) -> None:
        self._file.write("".join(lines).encode("utf-8", "replace"))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class RotatingFile(Sink):
    """A file that is renamed to `<path>.1` (older ones to `.2`, ...) before it would grow past
    `max_bytes`, or once it has been open for `max_age_ns`; at most `backups` old files are kept.

    The age counts from when this sink opened the file (a config reload starts it again): the time a
    file was created is not portably known. `max_age_ns` 0 means no rotation by age; `backups` 0 means
    the old content is discarded at rotation.
    """

    def __init__(
        self, path: str, *, max_bytes: int, backups: int, max_age_ns: int, clock: Callable[[], int]
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.max_age_ns = max_age_ns
        self._clock = clock
        self._open()

    def _open(self) -> None:
        self._file = open(self.path, "ab")  # noqa: SIM115 - kept open until rotation or close
        self._size = os.fstat(self._file.fileno()).st_size
        self._opened_at = self._clock()

    def write(self, lines: list[str]) -> None:
        too_old = self.max_age_ns > 0 and self._clock() - self._opened_at >= self.max_age_ns
        for text in lines:
            data = text.encode("utf-8", "replace")
            if self._size > 0 and (too_old or self._size + len(data) > self.max_bytes):
                self._rotate()
                too_old = False
            self._file.write(data)
            self._size += len(data)
        self._file.flush()

    def _rotate(self) -> None:
        self._file.close()
        for i in range(self.backups - 1, 0, -1):
            older = f"{self.path}.{i}"
            if os.path.exists(older):
                os.replace(older, f"{self.path}.{i + 1}")
        # The file may have been moved away by someone else meanwhile; then there is nothing to keep.
        with contextlib.suppress(FileNotFoundError):
            if self.backups > 0:
                os.replace(self.path, f"{self.path}.1")
            else:
                os.remove(self.path)
        self._open()

    def close(self) -> None:
        self._file.close()


def rotation_bytes(megabytes: int) -> int:
    """`maxMegabytesBeforeRotation` in bytes: 0 -> the default, anything above the cap -> the cap."""
    if megabytes == 0:
        megabytes = DEFAULT_ROTATION_MEGABYTES
    return min(megabytes, ROTATION_MEGABYTES_CAP) * MEGABYTE


def open_sink(params: Params, clock: Callable[[], int]) -> Sink:
    """The sink the params ask for (files are opened, or created, now)."""
    if params.log_stream == LogStream.STDOUT:
        return StandardStream("stdout")
    if params.log_stream == LogStream.STDERR:
        return StandardStream("stderr")
    if params.log_stream == LogStream.FILE:
        return AppendFile(params.output_path)
    return RotatingFile(
        params.output_path,
        max_bytes=rotation_bytes(params.max_megabytes_before_rotation),
        backups=params.max_rotated_files,
        max_age_ns=params.max_days_before_rotation * _DAY_NS,
        clock=clock,
    )
