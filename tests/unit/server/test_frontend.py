"""What the front-ends share (mixerd.server.frontend): a refusal becomes its status with a message within
what clients take, anything else is logged and answered INTERNAL without internals, and each is counted."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
import pytest

from mixerd.dispatch import DispatchError
from mixerd.server.frontend import (
    MAX_MESSAGE_CHARS,
    Method,
    Rejection,
    check_failed,
    count_by_number,
    shorten,
)

_METHOD = Method("Check", logging.getLogger("mixerd.test.frontend"))


class _Aborted(Exception):
    pass


class _Context:
    """The one thing a front-end asks of grpc's context here: abort (which raises)."""

    def __init__(self) -> None:
        self.status: tuple[grpc.StatusCode, str] | None = None

    async def abort(self, code: grpc.StatusCode, message: str) -> Any:
        self.status = (code, message)
        raise _Aborted


def _abort(error: Exception) -> tuple[tuple[grpc.StatusCode, str] | None, list[int]]:
    context, counts = _Context(), [0] * 17
    with pytest.raises(_Aborted):
        asyncio.run(_METHOD.abort(context, error, count_by_number(counts)))  # type: ignore[arg-type]
    return context.status, counts


def test_a_rejection_is_answered_with_its_status_and_counted_under_it() -> None:
    status, counts = _abort(Rejection(grpc.StatusCode.INVALID_ARGUMENT, "malformed CheckRequest: x"))
    assert status == (grpc.StatusCode.INVALID_ARGUMENT, "malformed CheckRequest: x")
    assert counts[3] == 1 and sum(counts) == 1


def test_anything_else_is_logged_and_answered_internal_without_its_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, "mixerd.test.frontend"):
        status, counts = _abort(RuntimeError("secret internals"))
    assert status == (
        grpc.StatusCode.INTERNAL,
        "mixerd internal error in Check (RuntimeError); see the server log",
    )
    assert counts[13] == 1
    [record] = caplog.records
    assert record.getMessage() == "Check failed" and record.exc_info is not None


def test_a_failed_dispatch_is_mixers_check_failure() -> None:
    rejection = check_failed(DispatchError("deny.handler: boom"))
    assert (rejection.code, rejection.message) == (
        grpc.StatusCode.INTERNAL,
        "performing check operation failed: deny.handler: boom",
    )


@pytest.mark.parametrize("length", [10, MAX_MESSAGE_CHARS, MAX_MESSAGE_CHARS + 1, 100_000])
def test_long_messages_are_cut_with_a_mark(length: int) -> None:
    text = shorten("x" * length)
    if length <= MAX_MESSAGE_CHARS:
        assert text == "x" * length
    else:
        assert text == "x" * (MAX_MESSAGE_CHARS - 15) + " ... (truncated)"
    status, _ = _abort(Rejection(grpc.StatusCode.UNKNOWN, "x" * length))
    assert status == (grpc.StatusCode.UNKNOWN, text)
