"""mixerd's own metrics, scraped over HTTP from a real server called over real gRPC on every API: calls
and verdicts counted apart, a latency histogram per API, per-rule matches and errors, per-handler call
durations; and docs/metrics.md lists every metric the server publishes (a new metric without a line
there fails here)."""

from __future__ import annotations

import itertools
import re
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest

from mixerd.api.envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from mixerd.api.envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from mixerd.api.envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc
from mixerd.api.mixer.v1 import mixer_pb2, mixer_pb2_grpc
from mixerd.attribute import GLOBAL_WORDS, encode_attributes
from mixerd.testing_scenarios.server import parse_metrics

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
NS = "istio-system"
CONFIG = """\
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: denier, namespace: istio-system}
spec:
  compiledAdapter: denier
  params: {status: {code: 7, message: not welcome}}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: nothing, namespace: istio-system}
spec: {compiledTemplate: checknothing}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: deny-bots, namespace: istio-system}
spec:
  match: request.headers["user-agent"] == "bot"
  actions: [{handler: denier, instances: [nothing]}]
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: big-only, namespace: istio-system}
spec:
  match: request.size > 1000
  actions: [{handler: denier, instances: [nothing]}]
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: counter, namespace: istio-system}
spec:
  compiledAdapter: memquota
  params:
    quotas: [{name: requestcount.instance.istio-system, maxAmount: 1, validDuration: 60s}]
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: requestcount, namespace: istio-system}
spec:
  compiledTemplate: quota
  params: {dimensions: {user: source.user | "nobody"}}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: count, namespace: istio-system}
spec:
  actions: [{handler: counter, instances: [requestcount]}]
---
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: nothing-sink, namespace: istio-system}
spec: {compiledAdapter: noop}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: told, namespace: istio-system}
spec: {compiledTemplate: reportnothing}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: everything, namespace: istio-system}
spec:
  actions: [{handler: nothing-sink, instances: [told]}]
"""


_IDS = itertools.count()


def _fqn(name: str, kind: str) -> str:
    return f"{name}.{kind}.{NS}"


def _scrape(server: Any) -> str:
    with urllib.request.urlopen(server.monitoring_url + "/metrics", timeout=10) as response:
        body: bytes = response.read()
    return body.decode()


def _mixer_check(channel: grpc.Channel, values: dict[str, Any], quota: int = 0) -> Any:
    request = mixer_pb2.CheckRequest(
        attributes=encode_attributes(values),
        global_word_count=len(GLOBAL_WORDS),
        deduplication_id=f"call-{next(_IDS)}",  # quota calls with one id are one call retried
    )
    if quota:
        request.quotas["requestcount"].amount = quota
    return mixer_pb2_grpc.MixerStub(channel).Check(request, timeout=10)


def _authz(channel: grpc.Channel, agent: str) -> Any:
    request = external_auth_pb2.CheckRequest()
    http = request.attributes.request.http
    http.method, http.path, http.host = "GET", "/", "books"
    http.headers["user-agent"] = agent
    return external_auth_pb2_grpc.AuthorizationStub(channel).Check(request, timeout=10)


@pytest.fixture
def server(start_mixer_server: Any, tmp_path: Path) -> Any:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "config.yaml").write_text(CONFIG)
    # Every optional part on, so that every metric is published: decision log, verdict cache, shedding.
    return start_mixer_server(config=str(folder), decision_log=str(tmp_path / "decisions.log"))


def test_calls_verdicts_latency_rules_and_handlers(server: Any) -> None:
    with grpc.insecure_channel(server.address) as channel:
        allowed = _mixer_check(
            channel, {"request.headers": {"user-agent": "curl"}, "request.size": 10}, quota=1
        )
        denied = _mixer_check(channel, {"request.headers": {"user-agent": "bot"}})
        limited = _mixer_check(channel, {"request.headers": {"user-agent": "curl"}}, quota=1)
        with pytest.raises(grpc.RpcError) as bad:
            mixer_pb2_grpc.MixerStub(channel).Check(mixer_pb2.CheckRequest(global_word_count=999), timeout=10)
        mixer_pb2_grpc.MixerStub(channel).Report(
            mixer_pb2.ReportRequest(
                attributes=[encode_attributes({"request.size": 1}), encode_attributes({"request.size": 2})],
                global_word_count=len(GLOBAL_WORDS),
            ),
            timeout=10,
        )
        authz_denied = _authz(channel, "bot")
        authz_cached = _authz(channel, "bot")
        authz_allowed = _authz(channel, "curl")
        rls_pb2_grpc.RateLimitServiceStub(channel).ShouldRateLimit(
            rls_pb2.RateLimitRequest(
                domain="nowhere", descriptors=[{"entries": [{"key": "k", "value": "v"}]}]
            ),
            timeout=10,
        )
        als_pb2_grpc.AccessLogServiceStub(channel).StreamAccessLogs(
            iter([als_pb2.StreamAccessLogsMessage(), als_pb2.StreamAccessLogsMessage()]), timeout=10
        )
    assert allowed.precondition.status.code == 0 and allowed.quotas["requestcount"].granted_amount == 1
    assert denied.precondition.status.code == 7
    assert limited.quotas["requestcount"].granted_amount == 0
    assert bad.value.code() == grpc.StatusCode.INTERNAL  # the dictionary mismatch, Mixer's code
    assert [a.status.code for a in (authz_denied, authz_cached, authz_allowed)] == [7, 7, 0]

    m = parse_metrics(_scrape(server))

    # The call's status and the verdict's, apart.
    assert m['mixerd_check_requests_total{code="OK"}'] == 3
    assert m['mixerd_check_requests_total{code="INTERNAL"}'] == 1
    assert m['mixerd_check_verdicts_total{code="OK"}'] == 2
    assert m['mixerd_check_verdicts_total{code="PERMISSION_DENIED"}'] == 1
    assert m['mixerd_quota_results_total{result="granted"}'] == 1
    assert m['mixerd_quota_results_total{result="denied"}'] == 1
    assert m['mixerd_authz_verdicts_total{code="PERMISSION_DENIED"}'] == 2  # one of them from the cache
    assert m['mixerd_authz_verdicts_total{code="OK"}'] == 1
    assert m["mixerd_authz_cache_hits_total"] == 1
    assert m['mixerd_ratelimit_requests_total{code="OK",domain="nowhere"}'] == 1

    # One latency histogram per API, each call in it once (answered or refused).
    calls = {"mixer_check": 4, "mixer_report": 1, "ext_authz": 3, "ratelimit": 1, "accesslog": 2}
    for api, count in calls.items():
        assert m[f'mixerd_server_request_duration_seconds_count{{api="{api}"}}'] == count, api
        assert m[f'mixerd_server_request_duration_seconds_bucket{{api="{api}",le="+Inf"}}'] == count
        assert 0 < m[f'mixerd_server_request_duration_seconds_sum{{api="{api}"}}'] < 10 * count
        # Cumulative: no bucket holds more than a wider one.
        buckets = sorted(
            (float(key.split('le="')[1].rstrip('"}')), value)
            for key, value in m.items()
            if key.startswith(f'mixerd_server_request_duration_seconds_bucket{{api="{api}",')
        )
        assert [v for _, v in buckets] == sorted(v for _, v in buckets)

    # Rules: matches once per request and step, errors per rule (request.size absent: an error).
    assert (
        m[f'mixerd_rule_matches_total{{rule="{_fqn("deny-bots", "rule")}"}}'] == 2
    )  # Mixer's and ext_authz's first: the cached answer ran no rule
    assert m[f'mixerd_rule_matches_total{{rule="{_fqn("count", "rule")}"}}'] == 2  # the quota step
    assert m[f'mixerd_rule_matches_total{{rule="{_fqn("everything", "rule")}"}}'] == 2  # two bags
    # big-only: two Mixer Checks without request.size (ext_authz always has one: the body's size).
    assert m[f'mixerd_rule_errors_total{{rule="{_fqn("big-only", "rule")}"}}'] == 2
    assert m["mixerd_rule_match_errors_total"] == 2

    # Handlers: each call timed.
    denier = f'handler="{_fqn("denier", "handler")}",template="checknothing"'
    assert m[f"mixerd_adapter_dispatch_duration_seconds_count{{{denier}}}"] == 2
    ok = f'handler="{_fqn("denier", "handler")}",outcome="ok",template="checknothing"'
    assert m[f"mixerd_adapter_dispatches_total{{{ok}}}"] == 2
    counter = f'handler="{_fqn("counter", "handler")}",template="quota"'
    assert m[f"mixerd_adapter_dispatch_duration_seconds_count{{{counter}}}"] == 2


_DOCUMENTED = re.compile(r"^\| `([a-z_:]+)` \|", re.MULTILINE)
_TYPE = re.compile(r"^# TYPE (\S+) (\S+)$", re.MULTILINE)


def test_every_published_metric_is_documented(server: Any) -> None:
    published = dict(_TYPE.findall(_scrape(server)))
    documented = set(_DOCUMENTED.findall(DOC.read_text()))
    # Every optional part is on in this server, so it publishes every family mixerd has.
    for family in (
        "mixerd_shed_requests_total",
        "mixerd_decision_log_written_total",
        "mixerd_authz_cache_bytes",
    ):
        assert family in published
    assert sorted(set(published) - documented) == [], "add these to docs/metrics.md"
    # And each documented metric has the type the page gives it.
    rows = dict(re.findall(r"^\| `([a-z_:]+)` \| (\w+) \|", DOC.read_text(), re.MULTILINE))
    for name, kind in published.items():
        assert rows[name] == kind, f"{name} is a {kind}: docs/metrics.md says {rows[name]}"


#: Names in the docs that look like metrics and are not: the plugin hook, the pytest ini option and
#: fixtures, the example adapter's module.
_NOT_METRICS = {
    "mixerd_adapter_info",
    "mixerd_adapters",
    "mixerd_example_adapter",
    "mixerd_scenario",
    "mixerd_server",
}


def test_every_metric_the_other_docs_name_is_one_mixerd_publishes() -> None:
    """A page naming a metric that was renamed or never existed fails here (the published ones are all on
    docs/metrics.md, by the test above)."""
    listed = set(_DOCUMENTED.findall(DOC.read_text()))
    docs = DOC.parent
    stale: list[str] = []
    for page in [*docs.rglob("*.md"), docs.parent / "README.md"]:
        for name in set(re.findall(r"\b(mixerd_[a-z_]*[a-z])\b", page.read_text())) - _NOT_METRICS:
            if not ({name, f"{name}_total"} & listed or name.endswith(("_bucket", "_count", "_sum"))):
                stale.append(f"{page.relative_to(docs.parent)}: {name}")
    assert stale == []
