"""One decision as the request path leaves it: references to what the front-end already has, nothing
formatted (render.py turns it into a JSON line, on the writer's thread)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...attribute import RawReferences
from ..stats import CODE_NAMES

if TYPE_CHECKING:
    from ...dispatch import QuotaOutcome, QuotaRequest
    from ...runtime.ratelimit import DescriptorRequest, DescriptorVerdict
    from ...runtime.trace import Trace

#: The APIs whose decisions are logged, as the `api` field names them.
MIXER_CHECK, EXT_AUTHZ, RATELIMIT = "mixer_check", "ext_authz", "ratelimit"


def code_name(code: int) -> str:
    return CODE_NAMES[code] if 0 <= code < len(CODE_NAMES) else str(code)


@dataclass(slots=True)
class Decision:
    """What one decision was, held as the front-end had it; read only once made."""

    api: str
    time_ns: int  # wall clock when the request was taken
    duration_ns: int
    code: str  # the verdict's gRPC status name (rate limit: OK or OVER_LIMIT); a failed call's status
    message: str = ""
    request_id: str | None = None  # None: the writer makes one up
    trace: Trace | None = None
    attributes: Any = None  # an AttributeBag (its `peek` gives values without recording a reference)
    references: RawReferences = ()
    quotas_asked: Mapping[str, QuotaRequest] | None = None
    quotas: Mapping[str, QuotaOutcome] | None = None
    cached: bool | None = None  # ext_authz: answered by the verdict cache
    cached_body: bytes | None = None  # that answer, read for its status when written
    domain: str = ""  # rate limit
    handler: str = ""  # rate limit: the domain's handler
    descriptors: Sequence[DescriptorRequest] = ()
    statuses: Sequence[DescriptorVerdict] = ()
