"""Every adapter mixerd can load, held to the one written lifecycle (DESIGN.md decision 3) by the checks
mixerd ships for any adapter (`mixerd.testing.conformance`, whose docstring lists them).

The adapters are those of `load_adapters()` (the built-ins and any installed plugin) plus the example
adapter of docs/adapters.md, imported from its source folder (pyproject.toml's pythonpath). What each
adapter documents (the exception a zero instance raises, the warnings that are right without its
backend) and params that take it down more of its paths are below.
"""

from __future__ import annotations

import re
from typing import Any

import mixerd_example_adapter as example
import pytest

from mixerd.adapter import AdapterInfo
from mixerd.plugins import load_adapters
from mixerd.testing.conformance import CHECKS, ZERO_NAME, Subject, run_check
from mixerd_adapters.memquota import UnknownQuota

ADAPTERS: dict[str, AdapterInfo] = {**load_adapters(), "strikes": example.mixerd_adapter_info()}
NAMES = sorted(ADAPTERS)

#: Params (as YAML data) that take an adapter down more of its paths than its defaults do; each adapter
#: runs with its defaults and, when listed here, with these too.
MORE_PARAMS: dict[str, dict[str, Any]] = {
    # a quota for the zero instance, so handle_quota answers instead of raising UnknownQuota
    "memquota": {"quotas": [{"name": ZERO_NAME, "maxAmount": 1, "validDuration": "1s"}]},
    # a list with entries, blacklisted
    "listchecker": {"overrides": ["a", "b"], "blacklist": True},
    "denier": {"status": {"code": 7, "message": "no"}},
    "strikes": {"maxStrikes": 1, "exempt": ["nobody"]},
    # a quota for the zero instance, and an address where no Redis listens (its fail policy answers)
    "redisquota": {
        "redisServerUrl": "127.0.0.1:1",
        "quotas": [{"name": ZERO_NAME, "maxAmount": 1, "validDuration": "1s"}],
    },
}

#: (adapter, template) -> the exception a zero instance raises with the adapter's default params, as the
#: adapter documents it. Nothing else may raise.
DOCUMENTED_ERRORS: dict[tuple[str, str], type[Exception]] = {
    # docs/adapters/memquota.md: an instance with no quota configured (validate rejects such a config)
    ("memquota", "quota"): UnknownQuota,
}

#: Warnings that are right on these paths. fluentd's default address (localhost:24224) has no Fluentd
#: here, so the zero instance queued by the test is lost at close, and losing data must be logged.
#: kubernetesenv outside a cluster (as here) is built but unavailable, and says so once.
EXPECTED_WARNINGS: dict[str, str] = {
    "fluentd": r"final delivery of \d+ items failed|sending \d+ items failed",
    "kubernetesenv": r"unavailable, no attributes will be generated",
    # no Redis listens at the default address (or the one above): the outage is logged once
    "redisquota": r"cannot reach Redis at ",
}


def subject(name: str) -> Subject:
    raises = {template: error for (adapter, template), error in DOCUMENTED_ERRORS.items() if adapter == name}
    return Subject(ADAPTERS[name], MORE_PARAMS.get(name), raises, EXPECTED_WARNINGS.get(name, ""))


def test_the_example_and_the_builtins_are_all_here() -> None:
    assert {"denier", "listchecker", "memquota", "noop", "stdio", "strikes"} <= set(NAMES)
    assert set(MORE_PARAMS) | set(EXPECTED_WARNINGS) <= set(NAMES)
    assert {adapter for adapter, _ in DOCUMENTED_ERRORS} <= set(NAMES)
    for pattern in EXPECTED_WARNINGS.values():
        re.compile(pattern)


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("name", NAMES)
def test_adapter_conformance(name: str, check: str) -> None:
    run_check(check, subject(name))
