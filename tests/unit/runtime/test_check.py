"""Check verdicts (MIXER.md 8.2, 8.3): how the check handlers' answers combine into one verdict, the
direct HTTP response of a denial, the header rules' operations on an allow, the references of everything
the rules read, and what a failed call does."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from runtime_rig import Rig, fqn, handler, instance, rule, run

from mixerd.adapter import CheckResult, Code, DirectResponse, Duration
from mixerd.dispatch import (
    ALLOW,
    APPEND,
    DEFAULT_VALID_DURATION,
    DEFAULT_VALID_USE_COUNT,
    REMOVE,
    REPLACE,
    CheckOutcome,
    DispatchError,
    HeaderOperation,
)
from mixerd.runtime.check import combine, http_status_for
from mixerd.runtime.trace import CHECK, ERRORED, FAILED, HEADERS, HELD, HandlerCalled, MatchEvaluated, Trace

S = 1_000_000_000
DENY, WHO = int(Code.PERMISSION_DENIED), int(Code.UNAUTHENTICATED)


def _r(status: int = 0, message: str = "", seconds: int = 60, uses: int = 10000, **kw: Any) -> CheckResult:
    return CheckResult(status, message, Duration(seconds * S), uses, **kw)


# -- combining answers: a table -------------------------------------------------------------------------

COMBINE = [
    ("no answer: Mixer's defaults", [], (0, "", DEFAULT_VALID_DURATION, DEFAULT_VALID_USE_COUNT)),
    ("one allow", [("a", _r(seconds=5, uses=7))], (0, "", 5 * S, 7)),
    (
        "allows: the minimum duration and use count, each on its own",
        [("a", _r(seconds=5, uses=90)), ("b", _r(seconds=30, uses=20))],
        (0, "", 5 * S, 20),
    ),
    ("an allow's message is not kept", [("a", _r(message="fine"))], (0, "", 60 * S, 10000)),
    (
        "the first failing status wins; every failing message is kept, in order",
        [("a", _r()), ("b", _r(DENY, "no")), ("c", _r(WHO, "who?"))],
        (DENY, "b:no, c:who?", 60 * S, 10000),
    ),
    (
        "order decides, not the code",
        [("c", _r(WHO, "who?")), ("b", _r(DENY, "no"))],
        (WHO, "c:who?, b:no", 60 * S, 10000),
    ),
    (
        "a denial's validity is still the minimum over every answer",
        [("a", _r(seconds=2, uses=500)), ("b", _r(DENY, "no", seconds=40, uses=3))],
        (DENY, "b:no", 2 * S, 3),
    ),
    ("an empty deny message still names the handler", [("a", _r(DENY))], (DENY, "a:", 60 * S, 10000)),
    ("zero validity is kept (do not cache)", [("a", _r(seconds=0, uses=0))], (0, "", 0, 0)),
]


@pytest.mark.parametrize(("answers", "expected"), [c[1:] for c in COMBINE], ids=[c[0] for c in COMBINE])
def test_combining_verdicts(answers: list[tuple[str, CheckResult]], expected: tuple[Any, ...]) -> None:
    outcome = combine(answers)
    assert (outcome.status_code, outcome.message, outcome.valid_duration, outcome.valid_use_count) == expected
    assert not outcome.has_route_directive and outcome.references is None and not outcome.quotas


def test_an_answer_that_is_not_a_check_result_fails_the_check() -> None:
    with pytest.raises(DispatchError, match=r"^a\.handler: returned dict, not a CheckResult$"):
        combine([("ok.handler", _r()), ("a.handler", {"status": 0})])


# -- direct responses -----------------------------------------------------------------------------------

DIRECT = [
    (
        "its own code and body",
        DirectResponse(302, "moved", {"Location": "/x"}),
        302,
        "moved",
        [("Location", "/x", REPLACE)],
    ),
    ("code 0: mapped from the status", DirectResponse(body="go away"), 403, "go away", []),
    (
        "set-cookie is split into one APPEND per cookie",
        DirectResponse(401, headers={"Set-Cookie": "a=1, b=2", "x-why": "login"}),
        401,
        "",
        [("Set-Cookie", "a=1", APPEND), ("Set-Cookie", "b=2", APPEND), ("x-why", "login", REPLACE)],
    ),
]


@pytest.mark.parametrize(
    ("direct", "code", "body", "headers"), [c[1:] for c in DIRECT], ids=[c[0] for c in DIRECT]
)
def test_a_denial_carries_the_first_direct_response(
    direct: DirectResponse, code: int, body: str, headers: list[tuple[str, str, int]]
) -> None:
    later = DirectResponse(500, "not this one")
    outcome = combine([("a", _r(DENY, "no", direct_response=direct)), ("b", _r(DENY, direct_response=later))])
    assert (outcome.direct_response_code, outcome.direct_response_body) == (code, body)
    assert outcome.response_header_operations == tuple(HeaderOperation(*h) for h in headers)
    assert outcome.request_header_operations == ()


def test_a_direct_response_on_an_allow_is_ignored() -> None:
    outcome = combine([("a", _r(direct_response=DirectResponse(302, "moved")))])
    assert not outcome.has_route_directive


@pytest.mark.parametrize(
    ("code", "http"),
    [
        (Code.INVALID_ARGUMENT, 400),
        (Code.OUT_OF_RANGE, 400),
        (Code.UNAUTHENTICATED, 401),
        (Code.PERMISSION_DENIED, 403),
        (Code.NOT_FOUND, 404),
        (Code.ALREADY_EXISTS, 409),
        (Code.ABORTED, 409),
        (Code.FAILED_PRECONDITION, 412),
        (Code.RESOURCE_EXHAUSTED, 429),
        (Code.CANCELLED, 408),
        (Code.DEADLINE_EXCEEDED, 504),
        (Code.UNIMPLEMENTED, 501),
        (Code.UNAVAILABLE, 503),
        (Code.INTERNAL, 500),
        (Code.DATA_LOSS, 500),
        (Code.UNKNOWN, 500),
    ],
)
def test_the_http_status_of_a_deny_code(code: Code, http: int) -> None:
    assert http_status_for(code) == http


# -- through the rules ---------------------------------------------------------------------------------


def _spies(*params: dict[str, Any], match: Sequence[str | None] = ()) -> list[dict[str, Any]]:
    """Spy handlers s0, s1, ... with `params`, each sent the instance `nothing` by rule r0, r1, ..."""
    docs = [instance("nothing", "checknothing")]
    for i, p in enumerate(params):
        docs.append(handler(f"s{i}", **p))
        docs.append(rule(f"r{i}", [(f"s{i}", ["nothing"])], match=match[i] if i < len(match) else None))
    return docs


def test_every_matching_rule_is_asked_and_their_references_merge(tmp_path: Path) -> None:
    docs = _spies(
        {"checkStatus": DENY, "checkMessage": "no"},
        {"validUseCount": 5},
        {},
        match=['source.name == "a"', 'destination.name == "b"', 'request.path == "/never"'],
    )

    async def scenario(rig: Rig) -> None:
        outcome, bag = await rig.check({"source.name": "a", "destination.name": "b", "request.path": "/"})
        assert (outcome.status_code, outcome.message, outcome.valid_use_count) == (
            DENY,
            "s0.handler.istio-system:no",
            5,
        )
        assert [c.handler for c in rig.recorder.take()] == [fqn("s0", "handler"), fqn("s1", "handler")]
        # Every attribute a match read is in the verdict's cache key, the failed match's too.
        assert outcome.references is None  # the front-end takes them from the bag
        assert sorted(r.name for r in bag.references()) == ["destination.name", "request.path", "source.name"]

    run(tmp_path, docs, scenario)


def test_no_check_rule_is_the_shared_allow(tmp_path: Path) -> None:
    async def scenario(rig: Rig) -> None:
        outcome, bag = await rig.check({"source.name": "a"})
        assert outcome is ALLOW and bag.references() == []

    run(tmp_path, [handler("s"), instance("log", "reportnothing"), rule("r", [("s", ["log"])])], scenario)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fail": "backend down"}, "s0.handler.istio-system: RuntimeError: backend down"),
        ({"fail": "slow", "delay": "1s"}, "s0.handler.istio-system: no answer within 0.04s"),
    ],
    ids=["raises", "too slow"],
)
def test_a_failed_call_fails_the_check(tmp_path: Path, params: dict[str, Any], message: str) -> None:
    async def scenario(rig: Rig) -> None:
        with pytest.raises(DispatchError) as failed:
            await rig.check({}, timeout=0.05)  # adapters get 80% of the caller's deadline
        assert str(failed.value) == message
        assert rig.runtime.stats.dispatches[(fqn("s0", "handler"), "checknothing", "error")] == 1

    run(tmp_path, _spies(params, {}), scenario)


def test_an_instance_that_cannot_be_built_fails_the_check(tmp_path: Path) -> None:
    docs = [
        handler("s"),
        instance("entry", "listentry", value="source.name"),
        rule("r", [("s", ["entry"])]),
    ]

    async def scenario(rig: Rig) -> None:
        with pytest.raises(
            DispatchError, match=r"^s\.handler\.istio-system: instance entry\.instance\.istio-system: "
        ):
            await rig.check({})
        assert rig.runtime.stats.instance_errors == 1 and rig.recorder.take() == []

    run(tmp_path, docs, scenario)


# -- header operations ----------------------------------------------------------------------------------

HEADER_RULES = [
    handler("deny", checkStatus=DENY),
    instance("nothing", "checknothing"),
    rule("deny-blocked", [("deny", ["nothing"])], match='source.name == "blocked"'),
    rule(
        "tag",
        requestHeaderOperations=[
            {"name": "X-User", "values": ["source.name"]},
            {
                "name": "x-trace",
                "values": ['"a"', 'request.headers["absent"] | ""', "destination.name"],
                "operation": "APPEND",
            },
            {"name": "cookie", "operation": "REMOVE"},
        ],
        responseHeaderOperations=[{"name": "x-served-by", "values": ['"mixerd"']}],
    ),
    rule(
        "never",
        match='source.name == "nobody"',
        responseHeaderOperations=[{"name": "x-no", "values": ['"no"']}],
    ),
]


def test_header_rules_that_match_edit_an_allowed_request(tmp_path: Path) -> None:
    async def scenario(rig: Rig) -> None:
        trace = Trace()
        outcome, _ = await rig.check({"source.name": "alice"}, trace=trace)
        assert outcome.status_code == 0
        # An empty value adds nothing; a value that fails to evaluate is skipped (Mixer).
        assert outcome.request_header_operations == (
            HeaderOperation("x-user", "alice", REPLACE),
            HeaderOperation("x-trace", "a", APPEND),
            HeaderOperation("cookie", "", REMOVE),
        )
        assert outcome.response_header_operations == (HeaderOperation("x-served-by", "mixerd", REPLACE),)
        assert [(e.step, e.rule, e.outcome) for e in trace.events if isinstance(e, MatchEvaluated)] == [
            (CHECK, fqn("deny-blocked", "rule"), FAILED),
            (HEADERS, fqn("tag", "rule"), HELD),
            (HEADERS, fqn("never", "rule"), FAILED),
        ]

    run(tmp_path, HEADER_RULES, scenario)


def test_a_denied_request_gets_no_header_operations(tmp_path: Path) -> None:
    async def scenario(rig: Rig) -> None:
        outcome, _ = await rig.check({"source.name": "blocked"})
        assert outcome.status_code == DENY and not outcome.has_route_directive

    run(tmp_path, HEADER_RULES, scenario)


# -- what a trace sees -----------------------------------------------------------------------------------


def test_a_trace_records_each_match_and_each_answer(tmp_path: Path) -> None:
    docs = _spies(
        {"checkStatus": DENY, "checkMessage": "no"},
        {"delay": "1ms"},
        {},
        match=[None, 'source.name == "a"', "request.size > 10"],
    )

    async def scenario(rig: Rig) -> None:
        trace = Trace()
        outcome, _ = await rig.check({"source.name": "a"}, trace=trace)
        assert outcome.status_code == DENY
        spy0, spy1 = fqn("s0", "handler"), fqn("s1", "handler")
        nothing = (fqn("nothing", "instance"),)
        assert trace.events == [
            MatchEvaluated(CHECK, fqn("r0", "rule"), HELD),
            HandlerCalled(CHECK, spy0, "checknothing", fqn("r0", "rule"), nothing, _r(DENY, "no")),
            MatchEvaluated(CHECK, fqn("r1", "rule"), HELD),
            MatchEvaluated(CHECK, fqn("r2", "rule"), ERRORED, "lookup failed: 'request.size'"),
            HandlerCalled(
                CHECK, spy1, "checknothing", fqn("r1", "rule"), nothing, _r()
            ),  # async: answered last
        ]
        assert rig.runtime.stats.match_errors == 1

    run(tmp_path, docs, scenario)


def test_outcomes_do_not_depend_on_a_trace(tmp_path: Path) -> None:
    async def scenario(rig: Rig) -> None:
        plain: list[CheckOutcome] = []
        traced: list[CheckOutcome] = []
        for who in ("alice", "blocked", "nobody"):
            plain.append((await rig.check({"source.name": who}))[0])
            traced.append((await rig.check({"source.name": who}, trace=Trace()))[0])
        assert plain == traced

    run(tmp_path, HEADER_RULES, scenario)
