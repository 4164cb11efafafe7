"""How `mixerd serve` logs: one level for mixerd, another for the libraries under it, text or JSON lines.

gRPC's Python layer and asyncio log a great deal at debug level (every poll of the completion queue);
turning mixerd's own logs up to debug must not bury them, so those loggers get their own level
(`log_level_grpc`, warning by default). With `log_format: json` every record is one JSON object per line
on stderr, for log pipelines: `time` (RFC 3339, UTC, milliseconds), `level`, `logger`, `message`, the
traceback as `exception` when there is one, and any fields a call passes in `extra`.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import sys
from typing import Any

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")

#: Loggers of the libraries under the server, kept at `log_level_grpc`.
LIBRARY_LOGGERS = ("grpc", "asyncio", "urllib3", "kubernetes", "opentelemetry", "redis")

_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _dt.datetime.fromtimestamp(record.created, _dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        return json.dumps(entry, default=str)


def configure(level: str, library_level: str = "warning", fmt: str = "text") -> None:
    """Log to stderr at `level`, the libraries (LIBRARY_LOGGERS) at `library_level`, as `fmt`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_TEXT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(library_level.upper())
