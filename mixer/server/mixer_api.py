"""The istio.mixer.v1.Mixer service: Check and Report over gRPC, in front of a Dispatcher.

The service is registered as a generic handler that receives the raw request bytes and returns
serialized bytes, so that a request that is not valid protobuf becomes INVALID_ARGUMENT (grpc's own
deserializer would answer INTERNAL for it) and so that the common no-rules Check answer is a constant.

gRPC statuses:

| condition | status and message |
|---|---|
| bytes that are not a valid request | INVALID_ARGUMENT `malformed CheckRequest: ...` (or ReportRequest) |
| global_word_count above ours | INTERNAL `inconsistent global dictionary versions used: mixer knows 222 |
| | words, caller knows N` (Mixer's text) |
| a Check bag does not decode | INVALID_ARGUMENT with the DecodeError text (names the index or attribute) |
| some Report bags do not decode | INVALID_ARGUMENT `report bag I of N: <DecodeError text>`, joined by `; ` |
| a Report's bags hold more attribute | RESOURCE_EXHAUSTED `the report's bags hold more than M attribute |
| values than `max_report_values` | values in all ...`; nothing of it is dispatched |
| a check adapter fails or times out, an instance cannot be built | INTERNAL `performing check operation |
| | failed: <handler FQN>: <reason>` |
| report instances or adapters fail | UNKNOWN `performing report operation failed: ...` (Mixer's code) |
| mixerd itself fails | INTERNAL `mixerd internal error in Check (<exception type>); see the |
| | server log`, logged with its traceback |

Report, unlike Mixer: Mixer answered UNKNOWN with the joined errors when some bags failed. mixerd first
hands every good bag to the dispatcher (nothing that could be decoded is lost), then answers
INVALID_ARGUMENT, because the caller sent bad input and UNKNOWN says nothing about whose fault it is.
I is the bag's 0-based index in ReportRequest.attributes. Proxies only log a failed Report either way.
With DELTA_ENCODING a bad bag is skipped and the next one builds on the last good one.
"""

from __future__ import annotations

import logging
from time import perf_counter

import grpc
from google.protobuf import duration_pb2
from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.rpc import status_pb2

from ..api.mixer.v1 import mixer_pb2
from ..attribute import (
    AttributeBag,
    DecodeError,
    DictionaryMismatch,
    Duration,
    ReportTooLarge,
    check_global_word_count,
    decode_attributes,
    decode_report,
    encode_reference_items,
)
from ..dispatch import ALLOW, CheckOutcome, Dispatcher, DispatchError, QuotaOutcome, QuotaRequest
from .decisions import MIXER_CHECK, OFF, DecisionLog
from .frontend import Method, Rejection, check_failed, count_by_number
from .raw_handlers import add_raw_handlers
from .stats import MIXER_CHECK_API, MIXER_REPORT_API, Stats, count_code, quota_result

SERVICE_NAME: str = mixer_pb2.DESCRIPTOR.services_by_name["Mixer"].full_name

_log = logging.getLogger(__name__)

_CheckRequest = mixer_pb2.CheckRequest
_CheckResponse = mixer_pb2.CheckResponse
_ReportRequest = mixer_pb2.ReportRequest

_INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
_RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
_INTERNAL = grpc.StatusCode.INTERNAL
_UNKNOWN = grpc.StatusCode.UNKNOWN

_CHECK = Method("Check", _log)
_REPORT = Method("Report", _log)
_MAX_LISTED_BAGS = 5


def _response_bytes(outcome: CheckOutcome) -> bytes:
    response = _CheckResponse()
    _fill_precondition(response.precondition, outcome, b"")
    return response.SerializeToString()


def _set_duration(target: duration_pb2.Duration, value: Duration) -> None:
    # Assigning marks the field present even when both parts are 0; a missing valid_duration makes the
    # proxy cache forever (MIXER.md 1).
    target.seconds = value.seconds
    target.nanos = value.nanos


def _set_status(target: status_pb2.Status, code: int, message: str) -> None:
    target.code = code  # assigning (even 0) marks the status present
    if message:
        target.message = message


def _fill_precondition(
    pre: mixer_pb2.CheckResponse.PreconditionResult,
    outcome: CheckOutcome,
    references: bytes,
) -> None:
    _set_status(pre.status, outcome.status_code, outcome.message)
    _set_duration(pre.valid_duration, outcome.valid_duration)
    pre.valid_use_count = outcome.valid_use_count
    # Assigning marks the field present even when empty, as Mixer always writes it.
    pre.referenced_attributes.SetInParent()
    pre.referenced_attributes.MergeFromString(references)
    if outcome.has_route_directive:
        directive = pre.route_directive
        for op in outcome.request_header_operations:
            directive.request_header_operations.add(name=op.name, value=op.value, operation=op.operation)
        for op in outcome.response_header_operations:
            directive.response_header_operations.add(name=op.name, value=op.value, operation=op.operation)
        directive.direct_response_code = outcome.direct_response_code
        directive.direct_response_body = outcome.direct_response_body


def _fill_quota(
    result: mixer_pb2.CheckResponse.QuotaResult,
    outcome: QuotaOutcome,
    references: bytes,
) -> None:
    _set_duration(result.valid_duration, outcome.valid_duration)
    result.granted_amount = outcome.granted_amount
    result.referenced_attributes.SetInParent()
    result.referenced_attributes.MergeFromString(references)
    _set_status(result.status, outcome.status_code, outcome.message)


#: The whole answer when no rule applies, no attribute was read and no quota was asked for.
_ALLOW_BYTES = _response_bytes(ALLOW)
_EMPTY = b""  # ReportResponse has no fields


def _check_word_count(count: int) -> None:
    try:
        check_global_word_count(count)
    except DictionaryMismatch as e:
        raise Rejection(_INTERNAL, str(e)) from None


def _bad_bags_message(errors: list[str]) -> str:
    listed = "; ".join(errors[:_MAX_LISTED_BAGS])
    more = len(errors) - _MAX_LISTED_BAGS
    return listed + (f"; and {more} more bad bags" if more > 0 else "")


class MixerApi:
    """Check and Report handlers over raw bytes; `add_to_server(server)` registers them."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        stats: Stats,
        *,
        max_report_values: int | None = None,
        decisions: DecisionLog = OFF,
    ) -> None:
        self._dispatcher = dispatcher
        self._decisions = decisions
        self._stats = stats
        self._max_report_values = max_report_values  # attribute values of one Report's bags together
        self._count_check = count_by_number(stats.check_codes)
        self._count_report = count_by_number(stats.report_codes)
        self._check_seconds = stats.durations.of(MIXER_CHECK_API)
        self._report_seconds = stats.durations.of(MIXER_REPORT_API)

    def add_to_server(self, server: grpc.aio.Server) -> None:
        handlers = {
            "Check": grpc.unary_unary_rpc_method_handler(self.check),
            "Report": grpc.unary_unary_rpc_method_handler(self.report),
        }
        add_raw_handlers(server, SERVICE_NAME, handlers)

    # -- gRPC entry points: every failure becomes a status -------------------------------------------

    async def check(self, raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
        started = perf_counter()
        try:
            body = await self._check(raw, context.time_remaining())
        except Exception as e:
            self._check_seconds.observe(perf_counter() - started)
            await _CHECK.abort(context, e, self._count_check)
        self._stats.check_codes[0] += 1
        self._check_seconds.observe(perf_counter() - started)
        return body

    async def report(self, raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
        started = perf_counter()
        try:
            body = await self._report(raw)
        except Exception as e:
            self._report_seconds.observe(perf_counter() - started)
            await _REPORT.abort(context, e, self._count_report)
        self._stats.report_codes[0] += 1
        self._report_seconds.observe(perf_counter() - started)
        return body

    # -- the work -----------------------------------------------------------------------------------

    async def _check(self, raw: bytes, timeout: float | None) -> bytes:
        stats = self._stats
        try:
            request = _CheckRequest.FromString(raw)
        except ProtobufDecodeError as e:
            stats.decode_errors += 1
            raise Rejection(_INVALID_ARGUMENT, f"malformed CheckRequest: {e}") from None
        _check_word_count(request.global_word_count)
        try:
            bag = AttributeBag.wrap(decode_attributes(request.attributes))
        except DecodeError as e:
            stats.decode_errors += 1
            raise Rejection(_INVALID_ARGUMENT, str(e)) from None

        quotas = request.quotas
        wanted = {name: QuotaRequest(p.amount, p.best_effort) for name, p in quotas.items()} if quotas else {}
        note = self._decisions.begin(MIXER_CHECK)  # None unless this decision is logged
        try:
            if note is None:
                outcome = await self._dispatcher.check(bag, wanted, request.deduplication_id, timeout)
            else:
                outcome = await note.check(self._dispatcher, bag, wanted, request.deduplication_id, timeout)
        except DispatchError as e:
            raise check_failed(e) from None
        count_code(stats.check_verdicts, outcome.status_code)
        if outcome is ALLOW and not bag.raw_references:
            return _ALLOW_BYTES

        response = _CheckResponse()
        gwc = request.global_word_count
        refs = outcome.references
        _fill_precondition(
            response.precondition,
            outcome,
            encode_reference_items(bag.reference_items() if refs is None else refs, gwc),
        )
        if outcome.quotas:
            stats.quota_requests += len(outcome.quotas)
            for name, quota in outcome.quotas.items():
                stats.quota_results[quota_result(wanted[name].amount, quota.granted_amount)] += 1
                quota_refs = bag.reference_items() if quota.references is None else quota.references
                _fill_quota(response.quotas[name], quota, encode_reference_items(quota_refs, gwc))
        return response.SerializeToString()

    async def _report(self, raw: bytes) -> bytes:
        stats = self._stats
        try:
            request = _ReportRequest.FromString(raw)
        except ProtobufDecodeError as e:
            stats.decode_errors += 1
            raise Rejection(_INVALID_ARGUMENT, f"malformed ReportRequest: {e}") from None
        _check_word_count(request.global_word_count)

        total = len(request.attributes)
        stats.report_bags += total
        bags: list[AttributeBag] = []
        errors: list[str] = []
        wrap = AttributeBag.wrap
        try:
            for position, values in decode_report(request, self._max_report_values):
                if isinstance(values, DecodeError):
                    errors.append(f"report bag {position} of {total}: {values}")
                else:
                    bags.append(wrap(values))
        except ReportTooLarge as e:  # nothing is dispatched: the request is refused whole
            stats.decode_errors += 1
            raise Rejection(_RESOURCE_EXHAUSTED, str(e)) from None
        if bags:
            try:
                await self._dispatcher.report(bags)
            except DispatchError as e:
                # Mixer's answer when instances or adapters failed; every good bag was still dispatched.
                stats.decode_errors += len(errors)
                text = f"performing report operation failed: {e}"
                if errors:
                    text += "; " + _bad_bags_message(errors)
                raise Rejection(_UNKNOWN, text) from None
        if errors:
            stats.decode_errors += len(errors)
            raise Rejection(_INVALID_ARGUMENT, _bad_bags_message(errors))
        return _EMPTY
