"""What every gRPC front-end shares: refusing a call with a gRPC status.

A front-end raises `Rejection` for a call it refuses (bad input, a failed dispatch) with the status and a
message safe to send; anything else it lets out is mixerd's own failure, logged with its traceback and
answered INTERNAL with no internals on the wire. `Method.abort` turns either into the call's status,
counted by the front-end's own counters, and keeps the message within what clients take.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

import grpc

from ..dispatch import DispatchError

# Status messages travel in HTTP/2 trailers, which clients cap (8 KiB by default); keep well below.
MAX_MESSAGE_CHARS = 2000

#: Counts one answered call by its status (each front-end keeps its own counters).
StatusCounter = Callable[[grpc.StatusCode], None]


class Rejection(Exception):
    """A call mixerd refuses, with the gRPC status to answer; the message is safe to send."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_failed(error: DispatchError) -> Rejection:
    """Mixer's answer when a check adapter or instance failed (Mixer's Check and ext_authz alike)."""
    return Rejection(grpc.StatusCode.INTERNAL, f"performing check operation failed: {error}")


def shorten(text: str) -> str:
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return text[: MAX_MESSAGE_CHARS - 15] + " ... (truncated)"


def count_by_number(counts: list[int]) -> StatusCounter:
    """A counter into `counts`, indexed by gRPC status number."""

    def count(code: grpc.StatusCode) -> None:
        counts[code.value[0]] += 1  # type: ignore[index]

    return count


@dataclass(frozen=True, slots=True)
class Method:
    """One gRPC method of a front-end: its name in messages, and the logger for mixerd's failures in it."""

    name: str
    log: logging.Logger

    def status(self, error: Exception) -> tuple[grpc.StatusCode, str]:
        """The status and message to answer `error` with (anything but a Rejection is logged)."""
        if isinstance(error, Rejection):
            return error.code, shorten(error.message)
        self.log.error("%s failed", self.name, exc_info=error)
        message = f"mixerd internal error in {self.name} ({type(error).__name__}); see the server log"
        return grpc.StatusCode.INTERNAL, message

    async def abort(
        self, context: grpc.aio.ServicerContext, error: Exception, count: StatusCounter
    ) -> NoReturn:
        """End the call with `error`'s status, counted by `count`."""
        code, message = self.status(error)
        count(code)
        await context.abort(code, message)
