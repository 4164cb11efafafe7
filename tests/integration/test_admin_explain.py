"""Explain a decision, over a real server and real HTTP (docs/admin.md, "Explain a decision"): a denied
Check, an allowed one and one whose rule match errors, each rule by rule; quotas and rate limits said
and never charged (a real Check and a real ShouldRateLimit then get the full allowance); ext_authz's
CheckRequest and a RateLimitRequest in their JSON forms; precise 400s; the form of the page; and
`mixerd check --explain`."""

from __future__ import annotations

import http.client
import json
import shutil
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from mixerd.api.envoy.service.ratelimit.v3 import rls_pb2
from mixerd.cli import main

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[1] / "data" / "explain"
RLS = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit"
DENY_RULE = "deny-blocked-users.rule.istio-system"
DENIER = "deny-blocked.handler.istio-system"
LISTCHECKER = "trusted-networks.handler.istio-system"
QUOTA_HANDLER = "per-user.handler.istio-system"


def post(
    url: str, path: str, body: bytes | str, content_type: str = "application/json", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=20)
    try:
        connection.request("POST", path, body, {"Content-Type": content_type, **headers})
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


def explain(server: Any, body: Any, expect: int = 200) -> dict[str, Any]:
    status, headers, raw = post(server.admin_url, "/debug/explain", json.dumps(body))
    assert (status, headers["content-type"]) == (expect, "application/json"), raw
    return dict(json.loads(raw))


def quota_counters(server: Any) -> list[Any]:
    host, port = server.admin_url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=20)
    connection.request("GET", "/debug/quotas")
    [memory] = json.loads(connection.getresponse().read())["counters"]
    connection.close()
    return [memory["quota"], memory["rate_limit"]]


@pytest.fixture
def server(start_mixer_server: Callable[..., Any], tmp_path: Path) -> Any:
    folder = tmp_path / "config"
    shutil.copytree(DATA, folder)
    return start_mixer_server(config=str(folder))


def _rule(answer: dict[str, Any], step: str, rule: str) -> dict[str, Any]:
    [found] = [r for r in answer["rules"] if (r["step"], r["rule"]) == (step, rule)]
    return found


def test_a_denied_check_names_the_rule_the_handler_and_its_answer(server: Any) -> None:
    answer = explain(
        server,
        {
            "attributes": {
                "request.headers": {"x-user": "blocked", "authorization": "Bearer s3cret"},
                "source.ip": "10.1.2.3",
            },
            "quotas": {"requestcount": 1},
        },
    )
    assert (answer["api"], answer["generation"], answer["dry_run"]) == ("mixer_check", 1, True)
    assert answer["verdict"] == {
        "code": "PERMISSION_DENIED",
        "message": f"{DENIER}:this user is blocked",
        "valid_duration": "10s",
        "valid_use_count": 100,
        "request_header_operations": [],  # header rules apply to allowed requests only
        "response_header_operations": [],
        "direct_response": None,
    }
    deny = _rule(answer, "check", DENY_RULE)
    assert (deny["match"], deny["outcome"]) == ('request.headers["x-user"] == "blocked"', "held")
    [call] = deny["calls"]
    assert (call["handler"], call["template"], call["made"], call["error"]) == (
        DENIER,
        "checknothing",
        True,
        "",
    )
    assert call["instances"] == [
        {
            "name": "nothing.instance.istio-system",
            "values": {"name": "nothing.instance.istio-system"},
            "error": "",
        }
    ]
    assert call["answer"]["code"] == "PERMISSION_DENIED"
    listed = _rule(answer, "check", "check-caller-ip.rule.istio-system")["calls"][0]
    assert listed["answer"]["code"] == "OK"  # the listchecker allows 10.0.0.0/8
    assert listed["instances"][0]["values"]["value"] == "10.1.2.3"
    assert {"name": "request.headers", "key": "x-user", "condition": "EXACT"} in answer[
        "referenced_attributes"
    ]
    [quota] = answer["quotas"]
    assert quota["note"] == "not asked: the check did not allow the request" and quota["would_ask"] == []
    # Secrets stay out: the authorization header the request carried is masked.
    assert answer["attributes"]["request.headers"]["authorization"] == "***"
    assert "s3cret" not in json.dumps(answer)


def test_an_allowed_check_says_what_each_quota_would_ask_and_charges_nothing(
    server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    dispatches = dict(server.running.runtime.stats.dispatches)
    body = {
        "attributes": {"request.headers": {"x-user": "alice"}, "source.ip": "10.0.0.9"},
        "quotas": {"requestcount": 3},
        "dedup_id": "explain-1",
    }
    for _ in range(3):  # explained over and over: still nothing charged
        answer = explain(server, body)
    assert answer["verdict"]["code"] == "OK"
    assert answer["verdict"]["request_header_operations"] == [
        {"operation": "REPLACE", "header": "x-checked-by", "value": "mixerd"},
        {"operation": "REPLACE", "header": "authorization", "value": "***"},
    ]
    assert _rule(answer, "check", DENY_RULE)["outcome"] == "failed"
    [quota] = answer["quotas"]
    assert (quota["quota"], quota["amount"], quota["charged"], quota["dedup_id"]) == (
        "requestcount",
        3,
        False,
        "explain-1requestcount",
    )
    assert quota["would_ask"] == [
        {
            "rule": "rate-limit-users.rule.istio-system",
            "handler": QUOTA_HANDLER,
            "instance": "requestcount.instance.istio-system",
            "values": {"name": "requestcount.instance.istio-system", "dimensions": {"user": "alice"}},
            "error": "",
        }
    ]
    quota_call = _rule(answer, "quota", "rate-limit-users.rule.istio-system")["calls"][0]
    assert (quota_call["handler"], quota_call["made"]) == (QUOTA_HANDLER, False)
    report = _rule(answer, "report", "count-requests.rule.istio-system")
    assert (report["outcome"], report["calls"]) == ("errored", [])  # no context.protocol: nothing reported
    assert quota_counters(server) == [[], []]  # memquota holds no counter: nothing was charged
    assert server.running.runtime.stats.dispatches == dispatches  # nor did any metric move

    capsys.readouterr()
    argv = ["check", "-m", server.address, "--json", "--stringmap", "request.headers=x-user:alice"]
    assert main([*argv, "--ip-attributes", "source.ip=10.0.0.9", "-q", "requestcount=3"]) == 0
    real = json.loads(capsys.readouterr().out)
    assert real["quotas"]["requestcount"]["granted_amount"] == 3  # the full allowance
    assert quota_counters(server)[0][0]["used"] == 3


def test_a_match_that_errors_is_said_and_counts_as_failed(server: Any) -> None:
    answer = explain(server, {"attributes": {"source.ip": "10.0.0.1", "context.protocol": "http"}})
    canary = _rule(answer, "check", "deny-canaries.rule.istio-system")
    assert (canary["outcome"], canary["error"], canary["calls"]) == (
        "errored",
        "lookup failed: 'destination.labels'",
        [],
    )
    deny = _rule(answer, "check", DENY_RULE)
    assert deny["outcome"] == "errored" and "request.headers" in deny["error"]
    assert answer["verdict"]["code"] == "OK"
    report = _rule(answer, "report", "count-requests.rule.istio-system")
    [call] = report["calls"]  # the report rule holds: what its handler would get, never sent
    assert (call["handler"], call["made"]) == ("sink.handler.istio-system", False)
    assert call["instances"][0]["values"]["dimensions"] == {"user": "anonymous"}


def test_a_denial_by_the_listchecker(server: Any) -> None:
    answer = explain(server, {"attributes": {"source.ip": "192.168.0.1"}})
    assert answer["verdict"]["code"] == "PERMISSION_DENIED"
    assert LISTCHECKER in answer["verdict"]["message"]
    [call] = _rule(answer, "check", "check-caller-ip.rule.istio-system")["calls"]
    assert call["instances"][0]["values"] == {
        "name": "caller-ip.instance.istio-system",
        "value": "192.168.0.1",
    }


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "the body is not JSON: Expecting property name enclosed in double quotes"),
        (b"[1]", "expected a JSON object with one of"),
        (b'{"attributes": {"no.such": 1}}', "attributes.no.such: no such attribute in the manifest in force"),
        (
            b'{"attributes": {"request.size": "10"}}',
            "attributes.request.size (INT64): expected an integer, got a string '10'",
        ),
        (
            b'{"attributes": {"response.duration": "soon"}}',
            "attributes.response.duration (DURATION): 'soon' is not a duration",
        ),
        (
            b'{"attributes": {"source.ip": "10.0.0"}}',
            "attributes.source.ip (IP_ADDRESS): expected an IPv4 or IPv6",
        ),
        (b'{"attributes": {}, "quotas": {"requestcount": "1"}}', "quotas.requestcount: expected an amount"),
        (b'{"attributes": {}, "ratelimit": {}}', "give exactly one of attributes, ext_authz, ratelimit"),
        (
            b'{"ext_authz": {"attributes": {"nope": 1}}}',
            "ext_authz: not a envoy.service.auth.v3.CheckRequest",
        ),
        (b'{"ratelimit": {"descriptors": []}}', "ratelimit: domain: must not be empty"),
    ],
)
def test_a_bad_request_is_400_with_a_precise_message(server: Any, body: bytes, error: str) -> None:
    status, _, raw = post(server.admin_url, "/debug/explain", body)
    assert status == 400, raw
    assert json.loads(raw)["error"].startswith(error)


def test_only_post_with_json_explains(server: Any) -> None:
    status, headers, _ = post(server.admin_url, "/debug/explain", "{}", content_type="text/plain")
    assert status == 415
    host, port = server.admin_url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=20)
    connection.request("GET", "/debug/explain")
    answer = connection.getresponse()
    assert (answer.status, answer.getheader("Allow")) == (405, "POST")
    connection.close()
    status, headers, _ = post(server.admin_url, "/debug/config", "{}")
    assert (status, headers["allow"]) == (405, "GET, HEAD")  # POST is for explaining only


def test_an_ext_authz_check_request_is_explained_as_the_front_end_reads_it(server: Any) -> None:
    request = {
        "attributes": {
            "source": {"address": {"socketAddress": {"address": "10.0.0.7", "portValue": 4711}}},
            "destination": {"labels": {"version": "canary"}},
            "request": {"http": {"method": "GET", "path": "/reviews/1?page=2", "headers": {"x-user": "bob"}}},
        }
    }
    answer = explain(server, {"ext_authz": request})
    assert answer["api"] == "ext_authz"
    assert answer["attributes"]["request.url_path"] == "/reviews/1"
    assert answer["attributes"]["context.reporter.kind"] == "inbound"
    assert _rule(answer, "check", "deny-canaries.rule.istio-system")["outcome"] == "held"
    assert answer["verdict"]["code"] == "PERMISSION_DENIED"
    response = answer["response"]  # the CheckResponse Envoy would get
    assert response["status"]["code"] == 7
    assert response["denied_response"]["status"]["code"] == "Forbidden"


def _should_rate_limit(server: Any, address: str) -> Any:
    request = rls_pb2.RateLimitRequest(domain="edge")
    request.descriptors.add().entries.add(key="remote_address", value=address)
    with grpc.insecure_channel(server.address) as channel:
        call = channel.unary_unary(
            RLS, rls_pb2.RateLimitRequest.SerializeToString, rls_pb2.RateLimitResponse.FromString
        )
        return call(request, timeout=20)


def test_a_rate_limit_request_is_answered_as_the_service_would_without_counting(server: Any) -> None:
    body = {
        "ratelimit": {
            "domain": "edge",
            "descriptors": [
                {"entries": [{"key": "remote_address", "value": "10.0.0.7"}]},
                {"entries": [{"key": "path", "value": "/x"}]},
            ],
        }
    }
    for _ in range(3):
        answer = explain(server, body)
    assert (answer["api"], answer["known"], answer["handler"], answer["overall_code"]) == (
        "ratelimit",
        True,
        QUOTA_HANDLER,
        "OK",
    )
    by_ip, other = answer["descriptors"]
    assert [(limit["name"], limit["counted"]) for limit in by_ip["matched"]["limits"]] == [("per-ip", True)]
    [ask] = by_ip["would_ask"]
    assert (ask["hits"], ask["limit"]["max_amount"], ask["remaining_now"], ask["would_be_allowed"]) == (
        1,
        2,
        2,
        True,
    )
    assert (other["matched"], other["would_ask"], other["status"]["code"]) == (None, [], "OK")
    assert answer["response"]["statuses"][0]["limit_remaining"] == 2
    assert quota_counters(server)[1] == []  # nothing counted

    # The real service then still has the full allowance; explain sees what it counted.
    assert [_should_rate_limit(server, "10.0.0.7").overall_code for _ in range(2)] == [1, 1]
    [ask] = explain(server, body)["descriptors"][0]["would_ask"]
    assert (ask["remaining_now"], ask["would_be_allowed"]) == (0, False)
    over = explain(server, body)
    assert over["overall_code"] == "OVER_LIMIT" and over["descriptors"][0]["status"]["code"] == "OVER_LIMIT"


def test_an_unknown_domain_is_ok_for_every_descriptor(server: Any) -> None:
    answer = explain(
        server, {"ratelimit": {"domain": "nowhere", "descriptors": [{"entries": [{"key": "a"}]}]}}
    )
    assert (answer["known"], answer["overall_code"], answer["descriptors"][0]["matched"]) == (
        False,
        "OK",
        None,
    )


def test_the_page_s_form_explains_without_javascript(server: Any) -> None:
    form = urllib.parse.urlencode(
        {"kind": "attributes", "request": '{"request.headers": {"x-user": "blocked"}}', "quotas": ""}
    )
    status, headers, raw = post(server.admin_url, "/explain", form, "application/x-www-form-urlencoded")
    page = raw.decode()
    assert (status, headers["content-type"]) == (200, "text/html; charset=utf-8")
    assert DENY_RULE in page and "PERMISSION_DENIED" in page
    assert "&quot;x-user&quot;: &quot;blocked&quot;" in page  # the form holds what was sent
    status, _, raw = post(
        server.admin_url, "/explain", "kind=attributes&request={bad", "application/x-www-form-urlencoded"
    )
    assert status == 400 and b"request: not JSON" in raw
    status, _, _ = post(
        server.admin_url, "/explain", form, "application/x-www-form-urlencoded", Origin="http://evil.example"
    )
    assert status == 403


def test_mixerd_check_explain_prints_it_readably(server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    admin = server.admin_url.removeprefix("http://")
    argv = ["check", "--explain", "--admin", admin, "--stringmap", "request.headers=x-user:blocked"]
    capsys.readouterr()
    assert main([*argv, "--ip-attributes", "source.ip=10.0.0.1", "-q", "requestcount=1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == [
        "Explained by config generation 1 (a dry run: no quota charged, nothing reported)",
        f"Check status would be PERMISSION_DENIED ({DENIER}:this user is blocked)",
        "  Valid use count: 100, valid duration: 10s",
    ]
    at = out.index(f"  check    {DENY_RULE}: match held")
    assert out[at + 1 : at + 4] == [
        '           request.headers["x-user"] == "blocked"',
        f"           -> {DENIER} (checknothing) answered PERMISSION_DENIED: this user is blocked "
        "(valid 10s, 100 uses)",
        '              nothing.instance.istio-system {"name": "nothing.instance.istio-system"}',
    ]
    assert "  check    deny-canaries.rule.istio-system: match errored, counted as failed: " in "\n".join(out)
    assert "  requestcount 1: not asked: the check did not allow the request" in out
    references = out[out.index("Referenced Attributes") + 1 :]
    assert "  request.headers::x-user EXACT" in references and "  source.ip EXACT" in references

    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"]["code"] == "PERMISSION_DENIED"

    assert main(["check", "--explain", "--admin", admin, "-a", "no.such=1"]) == 2
    assert "answered 400: attributes.no.such: no such attribute" in capsys.readouterr().err
