"""The contract between the front-ends and whatever decides outcomes (MIXER.md 8, 9).

It sits below both sides (DESIGN.md 2): mixerd.server's front-ends call a `Dispatcher`, mixerd.runtime
implements one, and neither imports the other for it.

A front-end decodes a request into an AttributeBag and asks a `Dispatcher` for a Check verdict (with the
quotas the request asks for) or hands it the bags of a Report. The rule engine (mixerd.runtime) is the
real dispatcher; `NoRulesDispatcher` gives Mixer's answers for a configuration where nothing matches.

Lookups a dispatcher makes through the bag are recorded by the bag itself. A dispatcher returns the
references each answer depended on (`bag.reference_items()`), and the front-end encodes them for its wire.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from .attribute import AttributeBag, Duration, RawReferences

#: google.rpc.Code.OK; outcomes carry google.rpc codes, the numbers gRPC statuses use too.
OK = 0

#: Mixer's answer when no check rule applies: cache for a minute or 10000 uses (MIXER.md 8.2).
DEFAULT_VALID_DURATION = Duration(60 * 1_000_000_000)
DEFAULT_VALID_USE_COUNT = 10000

REPLACE, REMOVE, APPEND = 0, 1, 2  # istio.mixer.v1.HeaderOperation.Operation


class DispatchError(Exception):
    """An adapter or instance failure that fails the whole call (Check -> INTERNAL); the message is
    safe to send to the caller."""


@dataclass(frozen=True, slots=True)
class HeaderOperation:
    name: str
    value: str
    operation: int = REPLACE


@dataclass(frozen=True, slots=True)
class QuotaRequest:
    amount: int
    best_effort: bool = False


@dataclass(frozen=True, slots=True)
class QuotaOutcome:
    """One quota allocation: `granted_amount` units for `valid_duration`, and its google.rpc status."""

    granted_amount: int
    valid_duration: Duration = DEFAULT_VALID_DURATION
    status_code: int = OK
    message: str = ""
    references: RawReferences | None = None  # None: whatever the bag recorded


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """A precondition verdict (`status_code` 0 allows), its cache terms, header edits and quota grants."""

    status_code: int = OK
    message: str = ""
    valid_duration: Duration = DEFAULT_VALID_DURATION
    valid_use_count: int = DEFAULT_VALID_USE_COUNT
    request_header_operations: tuple[HeaderOperation, ...] = ()
    response_header_operations: tuple[HeaderOperation, ...] = ()
    direct_response_code: int = 0
    direct_response_body: str = ""
    references: RawReferences | None = None  # None: whatever the bag recorded
    quotas: Mapping[str, QuotaOutcome] = field(default_factory=dict)

    @property
    def has_route_directive(self) -> bool:
        return bool(
            self.request_header_operations
            or self.response_header_operations
            or self.direct_response_code
            or self.direct_response_body
        )


#: The verdict when nothing applies and no quota was asked for; shared so the front-end can recognise
#: it by identity.
ALLOW = CheckOutcome()


class Dispatcher(Protocol):
    """Decides Check (with quotas) and Report outcomes for decoded bags.

    Methods may raise: DispatchError carries a message for the caller; anything else is logged and
    answered with a generic INTERNAL.
    """

    async def check(
        self,
        bag: AttributeBag,
        quotas: Mapping[str, QuotaRequest],
        dedup_id: str,
        timeout: float | None = None,
    ) -> CheckOutcome:
        """The verdict for one Check; quotas are only allocated when the verdict is OK (MIXER.md 8.1).

        Each quota's `dedup_id` for the adapters is `dedup_id` followed by the quota name, as Mixer
        passes it. `timeout` (seconds) bounds the wait on adapters.
        """
        ...

    async def report(self, bags: Sequence[AttributeBag]) -> None:
        """Take the decoded bags of one ReportRequest, in order (must not wait on backends)."""
        ...


class NoRulesDispatcher:
    """Mixer with no rules: every check passes, every quota is granted in full, reports are dropped."""

    async def check(
        self,
        bag: AttributeBag,
        quotas: Mapping[str, QuotaRequest],
        dedup_id: str,
        timeout: float | None = None,
    ) -> CheckOutcome:
        if not quotas:
            return ALLOW
        return CheckOutcome(quotas={name: QuotaOutcome(q.amount) for name, q in quotas.items()})

    async def report(self, bags: Sequence[AttributeBag]) -> None:
        return None


class SimpleDispatcher:
    """A Dispatcher written as three plain methods (for embedding and tests): `precondition(bag)`,
    `quota(bag, name, amount, best_effort, dedup_id)` per requested quota, and `report(bags)`.

    Defaults: allow, grant in full, drop reports. Each quota sees the references recorded before the
    precondition ran, as in Mixer.
    """

    async def precondition(self, bag: AttributeBag) -> CheckOutcome:
        return ALLOW

    async def quota(
        self, bag: AttributeBag, name: str, amount: int, best_effort: bool, dedup_id: str
    ) -> QuotaOutcome:
        return QuotaOutcome(granted_amount=amount)

    async def check(
        self,
        bag: AttributeBag,
        quotas: Mapping[str, QuotaRequest],
        dedup_id: str,
        timeout: float | None = None,
    ) -> CheckOutcome:
        mark = bag.mark_references()
        outcome = await self.precondition(bag)
        if not quotas or outcome.status_code != OK:
            return outcome
        precondition_refs = bag.reference_items()
        granted = {}
        for name, q in quotas.items():
            bag.reset_references(mark)
            result = await self.quota(bag, name, q.amount, q.best_effort, dedup_id + name)
            granted[name] = replace(result, references=bag.reference_items())
        return replace(outcome, references=precondition_refs, quotas=granted)

    async def report(self, bags: Sequence[AttributeBag]) -> None:
        return None
