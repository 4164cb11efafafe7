"""noop: does nothing, successfully. Checks are allowed, quotas granted in full, reports dropped; for
testing rules and for measuring mixerd without a backend. See docs/adapters/noop.md.
"""

from __future__ import annotations

from mixerd.adapter import AdapterInfo, hookimpl

from .handler import NoopHandler, build
from .params import Params

__all__ = ["NoopHandler", "Params", "build", "mixerd_adapter_info"]

TEMPLATES = (
    "checknothing",
    "reportnothing",
    "listentry",
    "logentry",
    "metric",
    "quota",
    "authorization",
    "apikey",
    "tracespan",
)


@hookimpl
def mixerd_adapter_info() -> AdapterInfo:
    return AdapterInfo(
        name="noop",
        templates=TEMPLATES,
        params=Params,
        build=build,
        description="Does nothing (useful for testing)",
    )
