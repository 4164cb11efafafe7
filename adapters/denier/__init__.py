"""denier: answers every check with one configured status (FAILED_PRECONDITION by default) and grants
nothing to every quota request. Rules choose when it applies through their match; see
docs/adapters/denier.md.
"""

from __future__ import annotations

from mixerd.adapter import AdapterInfo, hookimpl

from .handler import DenierHandler, build
from .params import Params, Status

__all__ = ["DenierHandler", "Params", "Status", "build", "mixerd_adapter_info"]


@hookimpl
def mixerd_adapter_info() -> AdapterInfo:
    return AdapterInfo(
        name="denier",
        templates=("checknothing", "listentry", "quota"),
        params=Params,
        build=build,
        description="Rejects any check and quota request with a configurable status",
    )
