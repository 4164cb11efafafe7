"""stdio params (Mixer's `adapter.stdio.config.Params`): where lines go, which levels, file rotation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum

from mixerd.adapter import Problem, camel


class LogStream(IntEnum):
    STDOUT = 0
    STDERR = 1
    FILE = 2
    ROTATED_FILE = 3


class Level(IntEnum):
    INFO = 0
    WARNING = 1
    ERROR = 2


def _default_severities() -> dict[str, Level]:
    # Mixer's default map, upper-case only: mixerd retries a lookup case-insensitively, so Mixer's
    # lower-case twins ("info", "warn", ...) are not needed.
    return {
        "INFORMATIONAL": Level.INFO,
        "INFO": Level.INFO,
        "WARNING": Level.WARNING,
        "WARN": Level.WARNING,
        "ERROR": Level.ERROR,
        "ERR": Level.ERROR,
        "FATAL": Level.ERROR,
    }


@dataclass
class Params:
    log_stream: LogStream = LogStream.STDOUT
    severity_levels: dict[str, Level] = field(default_factory=_default_severities)
    metric_level: Level = Level.INFO
    output_as_json: bool = True
    output_level: Level = Level.INFO
    output_path: str = ""
    # Mixer's default is 100 * 1024 * 1024, meant as bytes but read as megabytes (a unit slip); mixerd
    # reads megabytes too, and caps them at ROTATION_MEGABYTES_CAP (see sinks.py).
    max_megabytes_before_rotation: int = 104857600
    max_days_before_rotation: int = 30
    max_rotated_files: int = 1000

    def check(self) -> Iterator[Problem]:
        to_file = self.log_stream in (LogStream.FILE, LogStream.ROTATED_FILE)
        if to_file and not self.output_path:
            yield ".outputPath", "need a valid output path when using a FILE or ROTATED_FILE log stream"
        if not to_file and self.output_path:
            yield ".outputPath", "cannot specify an output path when using a STDOUT or STDERR log stream"
        for name in ("max_megabytes_before_rotation", "max_days_before_rotation", "max_rotated_files"):
            value = getattr(self, name)
            if value < 0:
                yield f".{camel(name)}", f"must not be negative, got {value}"
