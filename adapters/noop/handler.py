"""The noop handler: allows every check, grants every quota in full, drops every report."""

from __future__ import annotations

from typing import Any

from mixerd.adapter import (
    ApiKeyInstance,
    AuthorizationInstance,
    CheckNothingInstance,
    CheckResult,
    Duration,
    Env,
    ListEntryInstance,
    QuotaArgs,
    QuotaInstance,
    QuotaResult,
)

# Mixer's noop answers with a billion seconds and a billion uses: a noop verdict must not pull down the
# minimum that Check combines over every handler (MIXER.md 8.2).
VALID_DURATION = Duration(1_000_000_000 * 1_000_000_000)
VALID_USE_COUNT = 1_000_000_000

_ALLOW = CheckResult(valid_duration=VALID_DURATION, valid_use_count=VALID_USE_COUNT)


class NoopHandler:
    def handle_checknothing(self, instance: CheckNothingInstance) -> CheckResult:
        return _ALLOW

    def handle_listentry(self, instance: ListEntryInstance) -> CheckResult:
        return _ALLOW

    def handle_authorization(self, instance: AuthorizationInstance) -> CheckResult:
        return _ALLOW

    def handle_apikey(self, instance: ApiKeyInstance) -> CheckResult:
        return _ALLOW

    def handle_quota(self, instance: QuotaInstance, args: QuotaArgs) -> QuotaResult:
        return QuotaResult(granted_amount=args.amount, valid_duration=VALID_DURATION)

    def handle_reportnothing(self, instances: list[Any]) -> None:
        pass

    def handle_logentry(self, instances: list[Any]) -> None:
        pass

    def handle_metric(self, instances: list[Any]) -> None:
        pass

    def handle_tracespan(self, instances: list[Any]) -> None:
        pass

    def close(self) -> None:
        pass


def build(env: Env) -> NoopHandler:
    return NoopHandler()
