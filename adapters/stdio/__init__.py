"""stdio: writes logentry and metric instances as one line each (JSON by default) to stdout, stderr, a
file or a size-rotated file, in Mixer's stdio format. See docs/adapters/stdio.md.
"""

from __future__ import annotations

from mixerd.adapter import AdapterInfo, hookimpl

from .handler import StdioHandler, build
from .params import Level, LogStream, Params

__all__ = ["Level", "LogStream", "Params", "StdioHandler", "build", "mixerd_adapter_info"]


@hookimpl
def mixerd_adapter_info() -> AdapterInfo:
    return AdapterInfo(
        name="stdio",
        templates=("logentry", "metric"),
        params=Params,
        build=build,
        description="Writes logs and metrics to a standard I/O stream or a file",
    )
