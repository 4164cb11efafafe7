"""Check and Report calls for the CLI client: build the requests, send them (repeated, concurrently,
over one channel), and turn the answers into plain dicts that print as text or JSON.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import code_pb2

from ..api.mixer.v1 import mixer_pb2, mixer_pb2_grpc
from ..attribute import (
    BUILTIN_MANIFEST,
    Duration,
    ValueType,
    decode_references,
    encode_attributes,
    encode_report,
)
from .tls import ClientTls

CheckRequest = mixer_pb2.CheckRequest
CheckResponse = mixer_pb2.CheckResponse
ReportRequest = mixer_pb2.ReportRequest


# -- requests -----------------------------------------------------------------------------------------


def build_check_request(
    values: Mapping[str, Any],
    global_word_count: int,
    quotas: Mapping[str, int] | None = None,
    best_effort: bool = False,
) -> CheckRequest:
    """A CheckRequest without its deduplication_id (set per call, see DedupIds)."""
    request = CheckRequest(
        attributes=encode_attributes(values, global_word_count), global_word_count=global_word_count
    )
    for name, amount in (quotas or {}).items():
        request.quotas[name].CopyFrom(CheckRequest.QuotaParams(amount=amount, best_effort=best_effort))
    return request


def build_report_request(
    values: Mapping[str, Any], batch_size: int, global_word_count: int, delta: bool = False
) -> ReportRequest:
    """`batch_size` copies of one bag in one ReportRequest sharing `default_words`, as proxies batch.

    With `delta` the later copies are empty (nothing changed), which is what DELTA_ENCODING sends.
    """
    return encode_report([values] * batch_size, global_word_count, delta=delta)


class DedupIds:
    """`<uuid><n>` with n counting up per call, like the proxy; or one fixed id for every call
    (useful to see quota de-duplication at work)."""

    def __init__(self, fixed: str | None = None) -> None:
        self._fixed = fixed
        self._base = str(uuid.uuid4())
        self._next = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        if self._fixed is not None:
            return self._fixed
        with self._lock:
            n, self._next = self._next, self._next + 1
        return f"{self._base}{n}"


# -- calling ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """One RPC: its response, or the gRPC error code name and details; and how long it took."""

    latency: float
    response: Any = None
    error_code: str | None = None
    error_details: str = ""

    @property
    def ok(self) -> bool:
        return self.error_code is None


@contextmanager
def mixer_stub(address: str, tls: ClientTls | None = None) -> Iterator[mixer_pb2_grpc.MixerStub]:
    """A Mixer stub on one channel, plaintext or `tls` (shared by all workers; the sync stub is
    thread-safe)."""
    if tls is None:
        channel = grpc.insecure_channel(address)
    else:
        channel = grpc.secure_channel(address, tls.credentials(), options=tls.options())
    try:
        yield mixer_pb2_grpc.MixerStub(channel)
    finally:
        channel.close()


def timed_call(call: Callable[[], Any]) -> Outcome:
    start = time.perf_counter()
    try:
        response = call()
    except grpc.RpcError as e:
        code = e.code() if isinstance(e, grpc.Call) else grpc.StatusCode.UNKNOWN
        details = (e.details() if isinstance(e, grpc.Call) else str(e)) or ""
        return Outcome(time.perf_counter() - start, error_code=code.name, error_details=details)
    return Outcome(time.perf_counter() - start, response=response)


class Tally:
    """What a run keeps of its calls: every latency, counts per code, the first response and the first
    failure per gRPC code. Not every response, so that a run of millions of calls stays small.

    `quotas` (the amounts asked for) makes it a Check tally: it also counts precondition codes and,
    per quota, how many calls got the full amount.
    """

    def __init__(self, quotas: Mapping[str, int] | None = None) -> None:
        self._lock = threading.Lock()
        self._quotas = dict(quotas) if quotas is not None else None
        self.latencies = array("d")  # seconds; 8 bytes per call
        self.rpc_codes: Counter[str] = Counter()
        self.codes: Counter[str] = Counter()
        # per quota: [calls granted the full amount, calls granted less, units granted]
        self.quota_counts = {name: [0, 0, 0] for name in sorted(quotas or {})}
        self.first_response: Any = None
        self.failures: dict[str, Outcome] = {}

    def add(self, outcome: Outcome) -> None:
        with self._lock:
            self.latencies.append(outcome.latency)
            if outcome.error_code is not None:
                self.rpc_codes[outcome.error_code] += 1
                self.failures.setdefault(outcome.error_code, outcome)
                return
            self.rpc_codes["OK"] += 1
            if self.first_response is None:
                self.first_response = outcome.response
            if self._quotas is not None:
                self._count_check(outcome.response, self._quotas)

    def _count_check(self, response: CheckResponse, asked: Mapping[str, int]) -> None:
        self.codes[code_name(response.precondition.status.code)] += 1
        for name, counts in self.quota_counts.items():
            granted = response.quotas[name].granted_amount if name in response.quotas else 0
            counts[0 if granted >= asked[name] else 1] += 1
            counts[2] += granted

    @property
    def calls(self) -> int:
        return len(self.latencies)

    def summary(self, elapsed: float, concurrency: int) -> dict[str, Any]:
        """Counts and latencies, as the CLI prints them (text, or the JSON "summary")."""
        ok = self.rpc_codes["OK"]
        out: dict[str, Any] = {
            "calls": self.calls,
            "ok": ok,
            "errors": self.calls - ok,
            "rpc_codes": {code: n for code, n in self.rpc_codes.most_common() if n},
            "concurrency": concurrency,
            "elapsed_seconds": round(elapsed, 3),
            "calls_per_second": round(self.calls / elapsed, 1) if elapsed > 0 else None,
        }
        if self.latencies:
            ms = sorted(x * 1000 for x in self.latencies)
            out["latency_ms"] = {
                "min": round(ms[0], 3),
                "p50": round(percentile(ms, 50), 3),
                "p99": round(percentile(ms, 99), 3),
                "max": round(ms[-1], 3),
                "mean": round(sum(ms) / len(ms), 3),
            }
        if self._quotas is not None:
            out["codes"] = dict(self.codes.most_common())
            if self.quota_counts:
                out["quotas"] = {
                    name: {"granted_in_full": full, "short": short, "granted_total": total}
                    for name, (full, short, total) in self.quota_counts.items()
                }
        return out


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending, non-empty sequence."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def run_repeated(call: Callable[[], Any], repeat: int, concurrency: int, tally: Tally) -> tuple[float, bool]:
    """Run `call` `repeat` times on `concurrency` threads, adding each outcome to `tally`.

    Returns the elapsed seconds and whether Ctrl-C cut the run short (the workers then finish their
    current call and stop, so the tally still describes every call made).
    """
    lock = threading.Lock()
    started = 0
    stop = threading.Event()

    def worker() -> None:
        nonlocal started
        while not stop.is_set():
            with lock:
                if started >= repeat:
                    return
                started += 1
            tally.add(timed_call(call))

    begin = time.perf_counter()
    workers = max(1, min(concurrency, repeat))
    interrupted = False
    with ThreadPoolExecutor(workers, thread_name_prefix="mixerd-client") as pool:
        futures = [pool.submit(worker) for _ in range(workers)]
        try:
            for future in futures:
                future.result()
        except KeyboardInterrupt:
            stop.set()
            interrupted = True
    return time.perf_counter() - begin, interrupted


# -- results as plain data ------------------------------------------------------------------------------


def code_name(code: int) -> str:
    """A google.rpc.Code number as its name (PERMISSION_DENIED), or `CODE_<n>` for unknown numbers."""
    try:
        return code_pb2.Code.Name(code)
    except ValueError:
        return f"CODE_{code}"


def _duration(msg: Any) -> str:
    return str(Duration.from_parts(msg.seconds, msg.nanos))


def string_map_predicate(sent: Mapping[str, Any]) -> Callable[[str], bool]:
    """Which attribute names hold string maps: declared so in the manifest, or sent as one.

    A reference's map_key is only meaningful for those (0 is also the index of `source.ip`).
    """

    def is_string_map(name: str) -> bool:
        return BUILTIN_MANIFEST.get(name) is ValueType.STRING_MAP or isinstance(sent.get(name), Mapping)

    return is_string_map


def check_result(response: CheckResponse, is_string_map: Callable[[str], bool]) -> dict[str, Any]:
    """A CheckResponse as the CLI's JSON object (and the source of its text output)."""
    pre = response.precondition
    references = decode_references(pre.referenced_attributes, is_string_map)
    out: dict[str, Any] = {
        "code": code_name(pre.status.code),
        "message": pre.status.message,
        "valid_duration": _duration(pre.valid_duration),
        "valid_use_count": pre.valid_use_count,
        "referenced_attributes": sorted(
            ({"name": r.name, "condition": r.condition.name, "key": r.key} for r in references),
            key=lambda r: (r["name"], r["key"] or "", r["condition"]),
        ),
        "quotas": {name: _quota_result(q) for name, q in sorted(response.quotas.items())},
    }
    directive = _route_directive(pre.route_directive)
    if directive:
        out["route_directive"] = directive
    return out


def _quota_result(q: Any) -> dict[str, Any]:
    out = {"granted_amount": q.granted_amount, "valid_duration": _duration(q.valid_duration)}
    out["code"] = code_name(q.status.code)
    if q.status.message:
        out["message"] = q.status.message
    return out


def _route_directive(rd: Any) -> dict[str, Any]:
    """The set parts of a RouteDirective (header edits, direct response); {} when there are none."""
    out: dict[str, Any] = {}
    for field in ("request_header_operations", "response_header_operations"):
        ops = getattr(rd, field)
        if ops:
            out[field] = [
                {
                    "name": op.name,
                    "value": op.value,
                    "operation": mixer_pb2.HeaderOperation.Operation.Name(op.operation),
                }
                for op in ops
            ]
    if rd.direct_response_code:
        out["direct_response_code"] = rd.direct_response_code
    if rd.direct_response_body:
        out["direct_response_body"] = rd.direct_response_body
    return out


def report_result(bags: int) -> dict[str, Any]:
    # ReportResponse is empty: a completed RPC is the whole answer.
    return {"code": "OK", "message": "", "bags": bags}


def error_result(outcome: Outcome) -> dict[str, str]:
    return {"code": outcome.error_code or "UNKNOWN", "message": outcome.error_details}


def rpc_error_line(outcome: Outcome) -> str:
    """A failed call as Go's gRPC prints it (and mixc users know it)."""
    return f"rpc error: code = {outcome.error_code} desc = {outcome.error_details}"
