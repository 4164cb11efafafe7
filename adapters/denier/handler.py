"""The denier handler: the same verdict for every check, nothing granted for every quota."""

from __future__ import annotations

from mixerd.adapter import (
    CheckNothingInstance,
    CheckResult,
    Duration,
    Env,
    ListEntryInstance,
    QuotaArgs,
    QuotaInstance,
    QuotaResult,
)

from .params import Params

# Mixer's denier answers quota with an empty result: nothing granted, status OK.
_NOTHING_GRANTED = QuotaResult(granted_amount=0, valid_duration=Duration(0))


class DenierHandler:
    def __init__(self, result: CheckResult) -> None:
        self.result = result

    def handle_checknothing(self, instance: CheckNothingInstance) -> CheckResult:
        return self.result

    def handle_listentry(self, instance: ListEntryInstance) -> CheckResult:
        return self.result

    def handle_quota(self, instance: QuotaInstance, args: QuotaArgs) -> QuotaResult:
        return _NOTHING_GRANTED

    def close(self) -> None:
        pass


def build(env: Env) -> DenierHandler:
    params: Params = env.params
    # Built once: the verdict never changes, and CheckResult is frozen, so every call shares it.
    return DenierHandler(
        CheckResult(
            status=params.status.code,
            message=params.status.message,
            valid_duration=params.valid_duration,
            valid_use_count=params.valid_use_count,
            direct_response=params.status.direct_response(),
        )
    )
