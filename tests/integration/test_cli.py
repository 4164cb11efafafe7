"""`mixerd check` and `mixerd report` against a live in-process server (fixtures in conftest.py).

Most runs call `mixerd.cli.main` in this process; a few run `python -m mixerd` as a real subprocess.
A recording dispatcher shows what the server decoded, and answers with references, denials and partial
quota grants so the client's printing of each can be checked.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from peers.receivers import free_port

from mixerd.api.mixer.v1 import mixer_pb2
from mixerd.attribute import AttributeBag, Condition, Duration, Reference, Timestamp, encode_references
from mixerd.cli import main
from mixerd.client import calls
from mixerd.dispatch import ALLOW, CheckOutcome, QuotaOutcome, SimpleDispatcher

pytestmark = pytest.mark.integration

PERMISSION_DENIED = 7

# One attribute of every type, as flags and as the values the server must decode.
ALL_TYPE_FLAGS = [
    "-s", "destination.service.host=reviews.default.svc.cluster.local",
    "-i", "response.code=200",
    "-d", "custom.ratio=0.25",
    "-b", "connection.mtls=true",
    "-t", "request.time=2017-01-01T00:00:00.5Z",
    "--duration", "response.duration=10ms",
    "--bytes", "custom.bytes=0a:0b",
    "--stringmap", "request.headers=:path:/reviews/1;x-user:jason",
    "--ip-attributes", "destination.ip=10.0.0.2",
    "-a", "source.ip=10.0.0.1,request.size=12,custom.guess=hello",
]  # fmt: skip
ALL_TYPE_VALUES = {
    "destination.service.host": "reviews.default.svc.cluster.local",
    "response.code": 200,
    "custom.ratio": 0.25,
    "connection.mtls": True,
    "request.time": Timestamp.parse("2017-01-01T00:00:00.5Z"),
    "response.duration": Duration(10_000_000),
    "custom.bytes": b"\x0a\x0b",
    "request.headers": {":path": "/reviews/1", "x-user": "jason"},
    "destination.ip": ipaddress.ip_address("10.0.0.2").packed,
    "source.ip": ipaddress.ip_address("10.0.0.1").packed,
    "request.size": 12,
    "custom.guess": "hello",
}


class RecordingDispatcher(SimpleDispatcher):
    """Records decoded bags; reads a few attributes (so references come back); denies user `blocked`;
    grants at most `limit` units of any quota (all-or-nothing unless best effort)."""

    def __init__(self, limit: int = 3, fail: bool = False) -> None:
        self.limit = limit
        self.fail = fail
        self.checked: list[dict[str, Any]] = []
        self.quota_calls: list[tuple[str, int, bool, str]] = []
        self.reported: list[list[dict[str, Any]]] = []

    async def precondition(self, bag: AttributeBag) -> CheckOutcome:
        if self.fail:
            raise RuntimeError("adapter exploded")
        self.checked.append(bag.as_dict())
        bag.get("destination.service.host")
        bag.get("custom.absent")
        if bag.map_get("request.headers", "x-user") == "blocked":
            return CheckOutcome(PERMISSION_DENIED, "blocked user", Duration(5 * 10**9), 3)
        return ALLOW

    async def quota(
        self, bag: AttributeBag, name: str, amount: int, best_effort: bool, dedup_id: str
    ) -> QuotaOutcome:
        self.quota_calls.append((name, amount, best_effort, dedup_id))
        if amount <= self.limit:
            return QuotaOutcome(amount)
        return QuotaOutcome(self.limit if best_effort else 0)

    async def report(self, bags: Sequence[AttributeBag]) -> None:
        self.reported.append([bag.as_dict() for bag in bags])


@pytest.fixture
def recording(start_mixer_server: Callable[..., Any]) -> tuple[RecordingDispatcher, str]:
    dispatcher = RecordingDispatcher()
    return dispatcher, start_mixer_server(dispatcher=dispatcher).address


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- check ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dictionary", ["--use-global-dictionary", "--no-global-dictionary"])
def test_check_with_every_attribute_type(
    recording: tuple[RecordingDispatcher, str], capsys: pytest.CaptureFixture[str], dictionary: str
) -> None:
    dispatcher, address = recording
    code, out, err = run_cli(capsys, "check", "-m", address, dictionary, *ALL_TYPE_FLAGS)
    assert (code, err) == (0, "")
    assert dispatcher.checked == [ALL_TYPE_VALUES]
    assert out.splitlines() == [
        "Check RPC completed successfully. Check status was OK",
        "  Valid use count: 10000, valid duration: 1m0s",
        "  Referenced Attributes",
        "    custom.absent ABSENCE",
        "    destination.service.host EXACT",
        "    request.headers::x-user EXACT",
    ]


def test_check_json_against_the_no_rules_server(
    mixer_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "check", "-m", mixer_server.address, "--json", *ALL_TYPE_FLAGS)
    assert code == 0
    assert json.loads(out) == {
        "code": "OK",
        "message": "",
        "valid_duration": "1m0s",
        "valid_use_count": 10000,
        "referenced_attributes": [],
        "quotas": {},
    }


def test_check_quotas_are_granted_in_full_without_rules(
    mixer_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "check", "-m", mixer_server.address, "-a", "n=1", "-q", "rq=5,other=250")
    assert code == 0
    assert out.splitlines()[2:] == [
        "  Quota  Granted Amount  Duration  Status",
        "  other  250             1m0s      OK",
        "  rq     5               1m0s      OK",
    ]
    code, out, _ = run_cli(capsys, "check", "-m", mixer_server.address, "-q", "rq=5", "--json")
    assert json.loads(out)["quotas"] == {"rq": {"granted_amount": 5, "valid_duration": "1m0s", "code": "OK"}}


def test_check_quotas_best_effort_and_dedup_ids(
    recording: tuple[RecordingDispatcher, str], capsys: pytest.CaptureFixture[str]
) -> None:
    dispatcher, address = recording
    code, out, _ = run_cli(capsys, "check", "-m", address, "-q", "big=10,small=2", "--best-effort", "--json")
    assert code == 0
    quotas = json.loads(out)["quotas"]
    assert {name: q["granted_amount"] for name, q in quotas.items()} == {"big": 3, "small": 2}
    (big,) = [c for c in dispatcher.quota_calls if c[0] == "big"]
    assert big[:3] == ("big", 10, True)
    assert big[3].endswith("0big")  # <uuid><n> + quota name, n starting at 0


def test_denied_check_is_a_completed_rpc(
    recording: tuple[RecordingDispatcher, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, address = recording
    code, out, err = run_cli(capsys, "check", "-m", address, "--stringmap", "request.headers=x-user:blocked")
    assert (code, err) == (0, "")
    assert out.splitlines()[:2] == [
        "Check RPC completed successfully. Check status was PERMISSION_DENIED (blocked user)",
        "  Valid use count: 3, valid duration: 5s",
    ]
    code, out, _ = run_cli(
        capsys, "check", "-m", address, "--stringmap", "request.headers=x-user:blocked", "--json"
    )
    result = json.loads(out)
    assert (code, result["code"], result["message"]) == (0, "PERMISSION_DENIED", "blocked user")
    assert {"name": "request.headers", "condition": "EXACT", "key": "x-user"} in result[
        "referenced_attributes"
    ]


def test_repeated_check_summarises(
    recording: tuple[RecordingDispatcher, str], capsys: pytest.CaptureFixture[str]
) -> None:
    dispatcher, address = recording
    code, out, _ = run_cli(
        capsys, "check", "-m", address, "-a", "n=1", "-q", "rq=2,big=5", "-r", "20", "-c", "4", "--json"
    )
    assert code == 0
    result = json.loads(out)
    assert result["code"] == "OK"
    summary = result["summary"]
    assert {k: summary[k] for k in ("calls", "ok", "errors", "rpc_codes", "codes", "concurrency")} == {
        "calls": 20,
        "ok": 20,
        "errors": 0,
        "rpc_codes": {"OK": 20},
        "codes": {"OK": 20},
        "concurrency": 4,
    }
    assert summary["quotas"] == {
        "big": {"granted_in_full": 0, "short": 20, "granted_total": 0},
        "rq": {"granted_in_full": 20, "short": 0, "granted_total": 40},
    }
    latency = summary["latency_ms"]
    assert 0 < latency["min"] <= latency["p50"] <= latency["p99"] <= latency["max"]
    # Each call has its own deduplication id.
    assert len({dedup for name, _, _, dedup in dispatcher.quota_calls if name == "rq"}) == 20

    code, out, _ = run_cli(capsys, "check", "-m", address, "-q", "rq=1", "-r", "3", "--dedup-id", "fixed")
    assert code == 0
    assert [c[3] for c in dispatcher.quota_calls[-3:]] == ["fixedrq"] * 3
    assert "Check: 3 calls in " in out
    assert "  RPC codes: OK 3" in out.splitlines()
    assert "  Quota rq: 3 granted in full, 0 short (3 granted in all)" in out.splitlines()
    assert any(line.startswith("  Latency: p50 ") for line in out.splitlines())


def test_server_error_is_printed_and_exits_1(
    start_mixer_server: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_mixer_server(dispatcher=RecordingDispatcher(fail=True))
    code, out, err = run_cli(capsys, "check", "-m", server.address, "-a", "n=1")
    assert (code, out) == (1, "")
    assert err.startswith("rpc error: code = INTERNAL desc = mixerd internal error in Check (RuntimeError)")


# -- reading responses (no server needed) ---------------------------------------------------------------


def test_check_result_reads_references_like_the_proxy() -> None:
    # source.ip is global word 0, the same number as "no map key": only string maps get a key.
    refs = encode_references(
        [
            Reference("source.ip", Condition.EXACT),
            Reference("request.headers", Condition.EXACT, "x-user"),
            Reference("request.headers", Condition.ABSENCE, "x-other"),
            Reference("custom.map", Condition.EXACT, "k"),
            Reference("custom.missing", Condition.ABSENCE),
        ],
        global_word_count=222,
    )
    response = mixer_pb2.CheckResponse()
    response.precondition.referenced_attributes.CopyFrom(refs)
    response.precondition.valid_duration.FromSeconds(90)
    response.precondition.route_directive.direct_response_code = 403
    result = calls.check_result(response, calls.string_map_predicate({"custom.map": {"k": "v"}}))
    assert result["valid_duration"] == "1m30s"
    assert result["referenced_attributes"] == [
        {"name": "custom.map", "condition": "EXACT", "key": "k"},
        {"name": "custom.missing", "condition": "ABSENCE", "key": None},
        {"name": "request.headers", "condition": "ABSENCE", "key": "x-other"},
        {"name": "request.headers", "condition": "EXACT", "key": "x-user"},
        {"name": "source.ip", "condition": "EXACT", "key": None},
    ]
    assert result["route_directive"] == {"direct_response_code": 403}


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (calls.percentile(values, 50), calls.percentile(values, 99), calls.percentile([7.0], 99)) == (
        50,
        99,
        7,
    )


# -- report -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", [[], ["--delta"]])
def test_report_batch(
    recording: tuple[RecordingDispatcher, str], capsys: pytest.CaptureFixture[str], encoding: list[str]
) -> None:
    dispatcher, address = recording
    code, out, err = run_cli(
        capsys, "report", "-m", address, "--report-batch-size", "4", *encoding, *ALL_TYPE_FLAGS
    )
    assert (code, err) == (0, "")
    assert out == "Report RPC returned OK (4 bags)\n"
    assert dispatcher.reported == [[ALL_TYPE_VALUES] * 4]


def test_report_json_repeated(
    recording: tuple[RecordingDispatcher, str], capsys: pytest.CaptureFixture[str]
) -> None:
    dispatcher, address = recording
    args = ["report", "-m", address, "-a", "n=1", "--report-batch-size", "2", "--delta", "-r", "3", "-c", "2"]
    code, out, _ = run_cli(capsys, *args, "--json")
    assert code == 0
    result = json.loads(out)
    assert {k: result[k] for k in ("code", "message", "bags")} == {"code": "OK", "message": "", "bags": 2}
    assert (result["summary"]["calls"], result["summary"]["rpc_codes"]) == (3, {"OK": 3})
    assert dispatcher.reported == [[{"n": 1}] * 2] * 3


# -- failures ---------------------------------------------------------------------------------------------


def test_unreachable_server_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    address = f"127.0.0.1:{free_port()}"
    code, out, err = run_cli(capsys, "check", "-m", address, "-a", "n=1", "--timeout", "2")
    assert (code, out) == (1, "")
    assert err.startswith("rpc error: code = UNAVAILABLE desc = ")
    code, out, err = run_cli(capsys, "report", "-m", address, "--timeout", "2", "-r", "2", "--json")
    assert code == 1
    result = json.loads(out)
    assert result["error"]["code"] == "UNAVAILABLE"
    assert result["summary"]["rpc_codes"] == {"UNAVAILABLE": 2}
    assert err.count("rpc error: code = UNAVAILABLE") == 1  # one line per distinct failure


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, message in [
        (["check", "-i", "x=abc"], "mixerd check: error: -i: 'x=abc': 'abc' is not an int64"),
        (["check", "-q", "rq=many"], "mixerd check: error: -q: 'rq=many': 'many' is not an int64"),
        (["report", "--report-batch-size", "0"], "invalid positive integer value: '0'"),
        (["report", "--timeout", "0"], "invalid positive number value: '0'"),
        (["report", "-q", "rq=1"], "unrecognized arguments: -q"),
    ]:
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2, argv
        assert message in capsys.readouterr().err, argv


# -- as a real subprocess -----------------------------------------------------------------------------------


def _mixerd(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mixerd", *argv], capture_output=True, text=True, timeout=60, check=False
    )


def test_subprocess_check_and_report(recording: tuple[RecordingDispatcher, str]) -> None:
    dispatcher, address = recording
    done = _mixerd("check", "-m", address, "--json", "-q", "rq=1", *ALL_TYPE_FLAGS)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["code"], result["valid_duration"], result["valid_use_count"]) == ("OK", "1m0s", 10000)
    assert result["quotas"]["rq"]["granted_amount"] == 1
    assert dispatcher.checked == [ALL_TYPE_VALUES]

    done = _mixerd("report", "-m", address, "--report-batch-size", "3", *ALL_TYPE_FLAGS)
    assert (done.returncode, done.stdout) == (0, "Report RPC returned OK (3 bags)\n"), done.stderr
    assert dispatcher.reported == [[ALL_TYPE_VALUES] * 3]


def test_subprocess_failures() -> None:
    done = _mixerd("check", "-m", f"127.0.0.1:{free_port()}", "--timeout", "2")
    assert done.returncode == 1
    assert "rpc error: code = UNAVAILABLE desc = " in done.stderr
    done = _mixerd("check", "-b", "x=maybe")
    assert done.returncode == 2
    assert "mixerd check: error: -b: 'x=maybe': 'maybe' is not a bool (true or false)" in done.stderr
