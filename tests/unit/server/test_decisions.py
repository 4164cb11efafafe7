"""Decision logs in one process: the writer's bounded queue (drops counted, the rest written on close),
rotation, what a record shows of attributes (redacted, rendered), and when a request is recorded at all."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest

from mixerd.adapter import CheckResult
from mixerd.attribute import AttributeBag
from mixerd.attribute.values import Duration, Timestamp
from mixerd.dispatch import NoRulesDispatcher
from mixerd.runtime import RuntimeDispatcher
from mixerd.runtime.trace import CHECK, FAILED, HELD, HandlerCalled, MatchEvaluated, Trace
from mixerd.server.decisions import LOGGER, DecisionLog, DecisionWriter
from mixerd.server.decisions.record import Decision
from mixerd.server.decisions.recorder import traces
from mixerd.server.decisions.render import Redaction, json_line, record, summary
from mixerd.server.decisions.writer import RecentLines, file_sink


class BlockedSink:
    """A sink whose writes wait until released (a disk that does not keep up)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.lines: list[str] = []
        self.closed = False

    def write(self, lines: list[str]) -> None:
        self.entered.set()
        self.release.wait()
        self.lines.extend(lines)

    def close(self) -> None:
        self.closed = True


def decision(n: int) -> Decision:
    return Decision("mixer_check", 0, 0, "OK", request_id=f"r{n}")


def test_a_full_queue_drops_and_counts_and_the_rest_is_written_on_close() -> None:
    sink = BlockedSink()
    writer = DecisionWriter(sink, lambda d: d.request_id or "", max_queue=3, interval=0.01)
    writer.start()
    writer.offer(decision(0))
    assert sink.entered.wait(10)  # the thread holds r0 in a write that does not return
    for n in range(1, 6):
        writer.offer(decision(n))
    assert (writer.waiting, writer.dropped) == (3, 2)
    sink.release.set()
    writer.close()
    assert sink.lines == ["r0", "r1", "r2", "r3"]
    assert (writer.written, writer.dropped, sink.closed) == (4, 2, True)


def test_close_without_start_writes_what_waits() -> None:
    sink = BlockedSink()
    sink.release.set()
    writer = DecisionWriter(sink, lambda d: d.request_id or "")
    writer.offer(decision(1))
    writer.close()
    writer.close()  # idempotent
    assert sink.lines == ["r1"] and sink.closed


def test_the_file_sink_rotates_before_a_chunk_that_would_pass_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "d.log"
    sink = file_sink(str(path), max_bytes=100, backups=1)
    sink.write([f"line {n:02d} " + "x" * 30 for n in range(6)])  # 6 lines of 39 bytes with the newline
    sink.close()
    assert path.read_text().splitlines()[-1].startswith("line 05")
    assert path.stat().st_size <= 100 and (tmp_path / "d.log.1").stat().st_size <= 100
    assert not (tmp_path / "d.log.2").exists()


def test_a_record_shows_referenced_values_rendered_and_secrets_redacted() -> None:
    bag = AttributeBag(
        {
            "request.headers": {"Authorization": "Bearer x", "x-user": "alice", "cookie": "c"},
            "request.time": Timestamp.parse("2026-01-02T03:04:05Z"),
            "response.duration": Duration(1_500_000_000),
            "source.ip": b"\x0a\x00\x00\x07",
            "request.api_key": "k",
            "response.headers": {"set-cookie": "s", "a": "b"},
        }
    )
    bag.map_get("request.headers", "Authorization")
    bag.map_get("request.headers", "x-user")
    bag.map_get("request.headers", "x-missing")
    for name in ("request.time", "response.duration", "source.ip", "request.api_key", "response.headers"):
        bag.get(name)
    bag.get("destination.service")
    redaction = Redaction.parse("authorization,set-cookie,request.api_key")
    d = Decision("ext_authz", 0, 2_000_000, "OK", request_id="id", attributes=bag)
    d.references = bag.reference_items()
    out = record(d, redaction)
    assert out["attributes"] == {
        "request.headers": {"Authorization": "<redacted>", "x-user": "alice"},
        "request.time": "2026-01-02T03:04:05Z",
        "response.duration": "1.5s",
        "source.ip": "10.0.0.7",
        "request.api_key": "<redacted>",
        "response.headers": {"set-cookie": "<redacted>", "a": "b"},
    }
    assert out["absent"] == ["request.headers[x-missing]", "destination.service"]
    assert (out["time"], out["duration_ms"]) == ("1970-01-01T00:00:00.000000Z", 2.0)
    assert json.loads(json_line(d, redaction)) == out


def test_the_debug_line_names_what_denied() -> None:
    trace = Trace()
    trace.add(MatchEvaluated(CHECK, "allow-all.rule.ns", HELD))
    trace.add(MatchEvaluated(CHECK, "other.rule.ns", FAILED))
    trace.add(MatchEvaluated(CHECK, "deny.rule.ns", HELD))
    for handler, rule, answer in (
        ("ok.handler.ns", "allow-all.rule.ns", CheckResult()),
        ("no.handler.ns", "deny.rule.ns", CheckResult(7, "no")),
    ):
        trace.add(HandlerCalled(CHECK, handler, "checknothing", rule, ("i",), answer))
    d = Decision("mixer_check", 0, 1_000, "PERMISSION_DENIED", "no.handler.ns:no", "r1", trace)
    assert summary(d, Redaction(())) == (
        "mixer_check PERMISSION_DENIED by rule deny.rule.ns (handler no.handler.ns): no.handler.ns:no "
        "[request r1, 0.001 ms]"
    )
    allowed = Decision("mixer_check", 0, 1_000, "OK", "", "r2", Trace())
    assert summary(allowed, Redaction(())) == "mixer_check OK: no rule matched [request r2, 0.001 ms]"


class Writer(DecisionWriter):
    def __init__(self) -> None:
        super().__init__(BlockedSink(), str)


def test_nothing_is_recorded_when_off_or_unsampled_unless_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    assert DecisionLog().begin("mixer_check") is None
    assert DecisionLog(Writer(), 0.0).begin("mixer_check") is None
    assert DecisionLog(Writer(), 0.5, rand=lambda: 0.7).begin("mixer_check") is None
    sampled = DecisionLog(Writer(), 0.5, rand=lambda: 0.2).begin("mixer_check")
    assert sampled is not None and sampled.write and sampled.trace is not None
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    debug_only = DecisionLog().begin("ext_authz")
    assert debug_only is not None and not debug_only.write


def test_a_dispatcher_without_trace_is_called_without_one() -> None:
    assert not traces(NoRulesDispatcher())
    assert traces(RuntimeDispatcher.__new__(RuntimeDispatcher))


def test_the_recent_lines_kept_for_the_admin_page_are_bounded_in_count_and_size() -> None:
    recent = RecentLines(most=3, chars=100)
    for n in range(5):
        recent.add(f"line {n}")
    assert recent.lines() == ["line 2", "line 3", "line 4"]  # the newest, oldest first
    recent.add("x" * 11)  # over a tenth of the budget: not kept, counted
    assert recent.too_large == 1 and recent.lines()[-1] == "line 4"
    roomy = RecentLines(most=50, chars=100)
    for n in range(12):
        roomy.add(f"{n:02d}" * 5)  # 10 characters each: the budget holds 10 of them
    assert roomy.lines() == [f"{n:02d}" * 5 for n in range(2, 12)]
