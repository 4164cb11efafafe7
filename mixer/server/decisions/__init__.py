"""Decision logs (docs/decision-logs.md): one JSON line per Mixer Check, ext_authz Check and
ShouldRateLimit decision, and at debug level one readable log line per decision.

- `recorder`: what the front-ends call (`DecisionLog.begin()` per request, then the `Note` it answers);
- `record`: a decision as the request path leaves it;
- `render`: its JSON line and its debug line, with secrets redacted;
- `writer`: the bounded queue and the thread that writes to a rotated file or stdout;
- `metrics`: written and dropped counts on /metrics.

`from_settings` builds the whole from the `decision_log*` settings.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial

from prometheus_client import CollectorRegistry

from ...dispatch import Dispatcher
from ...settings import Settings
from .metrics import DecisionLogCollector
from .record import EXT_AUTHZ, MIXER_CHECK, RATELIMIT
from .recorder import LOGGER, OFF, DecisionLog, Note, traces
from .render import Redaction, json_line
from .writer import DecisionWriter, Sink, file_sink, stdout_sink

__all__ = [
    "EXT_AUTHZ",
    "LOGGER",
    "MIXER_CHECK",
    "OFF",
    "RATELIMIT",
    "DecisionLog",
    "DecisionWriter",
    "Note",
    "check_settings",
    "from_settings",
]


def check_settings(settings: Settings) -> None:
    """ValueError naming the setting when `decision_log` names a file that cannot be written."""
    target = settings.decision_log
    if target in ("off", "stdout"):
        return
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise ValueError(f"--decision-log {target}: no such folder {folder}")
    if os.path.isdir(target):
        raise ValueError(f"--decision-log {target}: is a folder; name a file")
    if not os.access(target if os.path.exists(target) else folder, os.W_OK):
        raise ValueError(f"--decision-log {target}: not writable")


def from_settings(
    settings: Settings,
    dispatcher: Dispatcher,
    registry: CollectorRegistry,
    rate_limit_handler: Callable[[str], str] = lambda domain: "",
) -> DecisionLog:
    """The server's decision log; its writer (if any) is not started yet (`log.writer.start()`)."""
    redaction = Redaction.parse(settings.decision_log_redact)
    writer = None
    target = settings.decision_log
    if target != "off":
        sink: Sink = (
            stdout_sink()
            if target == "stdout"
            else file_sink(target, settings.decision_log_max_bytes, settings.decision_log_backups)
        )
        writer = DecisionWriter(sink, partial(json_line, redaction=redaction))
        registry.register(DecisionLogCollector(writer))
    return DecisionLog(
        writer,
        settings.decision_log_sample,
        redaction,
        can_trace=traces(dispatcher),
        rate_limit_handler=rate_limit_handler,
    )
