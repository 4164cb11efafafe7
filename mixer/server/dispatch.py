"""The seam between the Mixer API front-end and whatever decides outcomes (MIXER.md 8, 9).

The front-end (mixer_api.py) decodes requests into AttributeBags and asks a `Dispatcher` three things:
a Check verdict, one quota allocation per requested quota, and to take a batch of reported bags. The
rule engine implements the same protocol later; until then `NoRulesDispatcher` gives Mixer's answers for
a configuration where nothing matches.

Lookups a dispatcher makes through the bag are recorded by the bag itself, and the front-end turns them
into ReferencedAttributes, so a dispatcher never encodes references.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..attribute import AttributeBag, Duration

#: google.rpc.Code.OK; outcomes carry google.rpc codes, the numbers gRPC statuses use too.
OK = 0

#: Mixer's answer when no check rule applies: cache for a minute or 10000 uses (MIXER.md 8.2).
DEFAULT_VALID_DURATION = Duration(60 * 1_000_000_000)
DEFAULT_VALID_USE_COUNT = 10000


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """A precondition verdict: `status_code` 0 allows; anything else denies with `message`."""

    status_code: int = OK
    message: str = ""
    valid_duration: Duration = DEFAULT_VALID_DURATION
    valid_use_count: int = DEFAULT_VALID_USE_COUNT


@dataclass(frozen=True, slots=True)
class QuotaOutcome:
    """One quota allocation: `granted_amount` units for `valid_duration`, and its google.rpc status."""

    granted_amount: int
    valid_duration: Duration = DEFAULT_VALID_DURATION
    status_code: int = OK
    message: str = ""


#: The verdict when nothing applies; shared so the front-end can recognise it by identity.
ALLOW = CheckOutcome()


class Dispatcher(Protocol):
    """Decides Check, quota and Report outcomes for decoded bags.

    Methods may raise; the front-end turns an exception into gRPC INTERNAL and logs it.
    """

    async def check(self, bag: AttributeBag) -> CheckOutcome:
        """The precondition verdict for one Check request."""
        ...

    async def quota(
        self, bag: AttributeBag, name: str, amount: int, best_effort: bool, dedup_id: str
    ) -> QuotaOutcome:
        """Allocate `amount` of quota `name` (only asked after an OK verdict).

        `dedup_id` is the request's deduplication_id followed by the quota name, as Mixer passes it, so
        a retried call gets the earlier answer from adapters that remember ids.
        """
        ...

    async def report(self, bags: Sequence[AttributeBag]) -> None:
        """Take the decoded bags of one ReportRequest, in order (must not wait on backends)."""
        ...


class NoRulesDispatcher:
    """Mixer with no rules: every check passes, every quota is granted in full, reports are dropped."""

    async def check(self, bag: AttributeBag) -> CheckOutcome:
        return ALLOW

    async def quota(
        self, bag: AttributeBag, name: str, amount: int, best_effort: bool, dedup_id: str
    ) -> QuotaOutcome:
        return QuotaOutcome(granted_amount=amount)

    async def report(self, bags: Sequence[AttributeBag]) -> None:
        return None
