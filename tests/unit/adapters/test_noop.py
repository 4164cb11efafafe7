"""noop: allows every check for a long time, grants every quota in full, ignores reports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mixerd.adapter import CheckResult, Code, Duration, Env, QuotaArgs, QuotaResult
from mixerd.params import ParamsError, read_params
from mixerd.plugins import collect_adapters, make_plugin_manager
from mixerd.templates import (
    TEMPLATES,
    ApiKeyInstance,
    AuthorizationInstance,
    CheckNothingInstance,
    ListEntryInstance,
    LogEntryInstance,
    MetricInstance,
    QuotaInstance,
    ReportNothingInstance,
    TraceSpanInstance,
)
from mixerd_adapters.noop import TEMPLATES as NOOP_TEMPLATES
from mixerd_adapters.noop import Params, build

BILLION_SECONDS = Duration(1_000_000_000 * 1_000_000_000)


def handler():
    return build(
        Env(handler="h.handler.istio-system", adapter="noop", params=read_params(Params, {}), instances={})
    )


def test_checks_are_allowed_for_a_billion_seconds_and_uses():
    h = handler()
    allow = CheckResult(
        status=Code.OK, message="", valid_duration=BILLION_SECONDS, valid_use_count=1_000_000_000
    )
    assert h.handle_checknothing(CheckNothingInstance(name="a")) == allow
    assert h.handle_listentry(ListEntryInstance(name="a", value="10.0.0.1")) == allow
    assert h.handle_authorization(AuthorizationInstance(name="a")) == allow
    assert h.handle_apikey(ApiKeyInstance(name="a")) == allow


@pytest.mark.parametrize("args", [QuotaArgs(amount=1), QuotaArgs(amount=250, best_effort=True, dedup_id="x")])
def test_quota_grants_the_amount_asked_for(args):
    assert handler().handle_quota(QuotaInstance(name="q"), args) == QuotaResult(
        granted_amount=args.amount, valid_duration=BILLION_SECONDS, status=Code.OK
    )


def test_reports_do_nothing():
    h = handler()
    assert h.handle_reportnothing([ReportNothingInstance(name="r")]) is None
    assert h.handle_logentry([LogEntryInstance(name="l", variables={"a": 1})]) is None
    assert h.handle_metric([MetricInstance(name="m", value=1)]) is None
    assert h.handle_tracespan([TraceSpanInstance(name="t")]) is None
    h.close()
    h.close()


def test_params_take_nothing():
    assert read_params(Params, None) == Params()
    with pytest.raises(ParamsError) as e:
        read_params(Params, {"verbose": True})
    assert e.value.problems == [(".verbose", "unknown field (this takes no params)")]


def test_registered_with_a_method_per_template():
    info = collect_adapters(make_plugin_manager(entry_points=False))["noop"]
    assert info.templates == NOOP_TEMPLATES
    assert set(info.templates) == set(TEMPLATES) - {"kubernetes"}
    h = info.build(Env(handler="h", adapter="noop", params=Params(), instances={}))
    for template in info.templates:
        assert callable(getattr(h, TEMPLATES[template].method))


def test_the_docs_example_is_a_valid_handler():
    text = (Path(__file__).parents[3] / "docs" / "adapters" / "noop.md").read_text()
    (example,) = re.findall(r"```yaml\n(.*?)```", text, re.S)
    doc = yaml.safe_load(example)
    assert (doc["kind"], doc["apiVersion"], doc["spec"]["compiledAdapter"]) == (
        "handler",
        "config.istio.io/v1alpha2",
        "noop",
    )
    read_params(Params, doc["spec"].get("params"))
