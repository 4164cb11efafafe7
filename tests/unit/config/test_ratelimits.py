"""`ratelimitconfig` resources compiled (mixer/config/ratelimits.py): the descriptor tree and limits they
become, the handlers they bring into the snapshot, and how the kind sits among the others. Every failure
mode has its own case in tests/data/config/bad/ratelimit_*; this file checks what valid configs become."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mixerd.adapter import RateLimitAlgorithm
from mixerd.config import ConfigRejected, compile_snapshot, load_snapshot
from mixerd.config.loader import Document
from mixerd.config.ratelimit_model import UNIT_NUMBERS, RateLimitDomain
from mixerd.plugins import load_adapters

S = 1_000_000_000
GOOD = Path(__file__).resolve().parents[2] / "data" / "config" / "good" / "ratelimit_envoyproxy_format"


def compile_domain(descriptors: str, **spec: Any) -> RateLimitDomain:
    docs = [
        {
            "apiVersion": "config.istio.io/v1alpha2",
            "kind": "handler",
            "metadata": {"name": "counter", "namespace": "istio-system"},
            "spec": {"compiledAdapter": "memquota"},
        },
        {
            "apiVersion": "config.istio.io/v1alpha2",
            "kind": "ratelimitconfig",
            "metadata": {"name": "edge", "namespace": "istio-system"},
            "spec": {
                "domain": "edge",
                "handler": "counter",
                "descriptors": yaml.safe_load(descriptors),
                **spec,
            },
        },
    ]
    snapshot = compile_snapshot([Document("r.yaml", i + 1, d) for i, d in enumerate(docs)], load_adapters())
    return snapshot.rate_limit_domains["edge"]


def test_descriptors_are_indexed_the_way_requests_look_them_up() -> None:
    domain = compile_domain("""
- key: path
  value: /api/*
  rate_limit: {unit: second, requests_per_unit: 1}
- key: path
  value: /health
  rate_limit: {unit: second, requests_per_unit: 2}
- key: path
  value: /*/users
  share_threshold: true
  rate_limit: {unit: second, requests_per_unit: 3}
- key: path
  descriptors:
  - key: user
    rate_limit: {unit: second, requests_per_unit: 4}
""")
    table = domain.descriptors
    assert list(table.exact) == [("path", "/health")]
    assert [d.value for d in table.wildcards["path"]] == ["/api/*", "/*/users"]  # in the file's order
    assert table.wildcards["path"][1].share_threshold
    nested = table.any_value["path"]
    assert nested.limits == () and nested.children.any_value["user"].stat_name == "path.user"
    assert table.wildcards["path"][0].stat_name == "path_/api/*"
    assert domain.handler == "counter.handler.istio-system"
    assert domain.resource == "edge.ratelimitconfig.istio-system"


@pytest.mark.parametrize(
    ("limit", "window", "algorithm", "bucket"),
    [
        ("{unit: second, requests_per_unit: 5}", S, RateLimitAlgorithm.FIXED_WINDOW, 0),
        (
            "{unit: MINUTE, requests_per_unit: 5, unit_multiplier: 5}",
            300 * S,
            RateLimitAlgorithm.FIXED_WINDOW,
            0,
        ),
        ("{unit: week, requests_per_unit: 5}", 7 * 86400 * S, RateLimitAlgorithm.FIXED_WINDOW, 0),
        ("{unit: month, requests_per_unit: 5}", 30 * 86400 * S, RateLimitAlgorithm.FIXED_WINDOW, 0),
        ("{unit: year, requests_per_unit: 5}", 365 * 86400 * S, RateLimitAlgorithm.FIXED_WINDOW, 0),
        (
            "{unit: hour, requests_per_unit: 5, algorithm: ROLLING_WINDOW}",
            3600 * S,
            RateLimitAlgorithm.ROLLING_WINDOW,
            360 * S,  # a tenth of the window unless given
        ),
        (
            "{unit: minute, requestsPerUnit: 5, algorithm: rolling_window, bucketDuration: 250ms}",
            60 * S,
            RateLimitAlgorithm.ROLLING_WINDOW,
            S // 4,
        ),
    ],
)
def test_limits_become_windows(limit: str, window: int, algorithm: RateLimitAlgorithm, bucket: int) -> None:
    domain = compile_domain(f"[{{key: k, rate_limit: {limit}}}]")
    [policy] = domain.descriptors.any_value["k"].limits
    assert policy.limit is not None and policy.current is not None
    assert (policy.limit.max_amount, policy.limit.window, policy.limit.algorithm) == (5, window, algorithm)
    assert policy.limit.bucket_duration == bucket
    unit = yaml.safe_load(limit).get("unit").upper()
    assert policy.current.unit == UNIT_NUMBERS[unit] and policy.current.requests_per_unit == 5


def test_unlimited_replaces_and_names() -> None:
    domain = compile_domain("""
- key: a
  rate_limit: {unit: second, requests_per_unit: 5, name: five}
- key: b
  rate_limit: {unlimited: true, name: free, replaces: [{name: five}]}
""")
    [unlimited] = domain.descriptors.any_value["b"].limits
    assert unlimited.unlimited and unlimited.limit is None and unlimited.replaces == {"five"}
    [five] = domain.descriptors.any_value["a"].limits
    assert five.name == five.current.name == "five"  # type: ignore[union-attr]


def test_a_handler_only_a_ratelimitconfig_names_is_built_and_marked() -> None:
    snapshot = load_snapshot(GOOD, load_adapters())
    assert sorted(snapshot.rate_limit_domains) == ["edge_proxy_per_ip", "mongo_cps", "quotas"]
    shared = snapshot.handlers["shared.handler.edge-team"]
    assert (shared.rate_limits, dict(shared.instances)) == (True, {})
    memory = snapshot.handlers["memory.handler.istio-system"]  # also a rule's quota handler
    assert memory.rate_limits and list(memory.instances) == ["requestcount.instance.istio-system"]
    assert snapshot.resources_by_kind["ratelimitconfig"] == 3


def test_a_handler_no_one_uses_is_not_built() -> None:
    docs = [
        {
            "apiVersion": "config.istio.io/v1alpha2",
            "kind": "handler",
            "metadata": {"name": "idle"},
            "spec": {"compiledAdapter": "memquota"},
        }
    ]
    snapshot = compile_snapshot([Document("h.yaml", 1, docs[0])], load_adapters())
    assert snapshot.handlers == {} and snapshot.rate_limit_domains == {}


def test_a_bad_ratelimitconfig_rejects_the_whole_config() -> None:
    with pytest.raises(ConfigRejected) as e:
        compile_domain("[{key: a, rate_limit: {unit: second, requests_per_unit: -1}}]")
    assert [str(x) for x in e.value.errors] == [
        "r.yaml: ratelimitconfig 'edge.ratelimitconfig.istio-system' .spec.descriptors[0].rate_limit"
        ".requests_per_unit: must be between 0 and 4294967295, got -1"
    ]
