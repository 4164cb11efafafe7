"""Placeholder: registered by add_envoy_services once written."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

if TYPE_CHECKING:
    from . import FrontEndContext


def add_to_server(server: grpc.aio.Server, context: FrontEndContext) -> str | None:
    return None
