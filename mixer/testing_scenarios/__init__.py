"""Scenario tests: a config, a list of calls and the answers expected, run against a real mixerd.

This is how Mixer tested its adapters (config + calls + golden result), and it is meant for adapter
authors too: `check_scenario(path, tmp_path)` starts mixerd in-process on free ports with the
config, sends each call over real gRPC and raises ScenarioFailed (an AssertionError) with a YAML
diff for every call that answered differently.

A scenario file::

    description: a denier blocks bob                    # optional
    settings: {adapterTimeout: 0.5}                     # optional: server settings (camelCase or snake)
    clock: 2020-01-01T00:00:00Z                         # optional: a manual clock for the adapters
    config: |                                           # YAML text (multi-document), or a list of
      apiVersion: config.istio.io/v1alpha2              # resource documents, or {file name: either}
      kind: handler
      ...
    calls:
    - note: bob is denied                               # optional: named in failure messages
      advanceClock: 1s                                  # optional: move the manual clock first
      check:
        attributes: {request.headers: {x-user: bob}, source.ip: 10.0.0.1}
        quotas: {requestcount: 1, other: {amount: 5, bestEffort: true}}
        dedupId: abc                                    # optional: default a fresh id per call
        timeout: 1s                                     # optional: the client's deadline
      expect:
        code: PERMISSION_DENIED                         # precondition status (name or number)
        message: "deny.handler.istio-system:bob is blocked"
        validDuration: 5s
        validUseCount: 1000
        referenced: [request.headers::x-user EXACT, source.ip ABSENCE]
        quotas: {requestcount: {granted: 1, validDuration: 1s, code: OK, referenced: [...]}}
        requestHeaders: ["REPLACE x-user: bob", "APPEND x-tag: a", "REMOVE x-debug"]
        responseHeaders: [...]
        directResponse: {code: 403, body: denied}       # or null for none
    - report:
        bags: [{response.code: 200}, {response.code: 404}]
      expect:
        rpcError: {code: UNKNOWN, message: "..."}      # the RPC itself fails (any call)
        adapterCalls:                                   # what `spy` handlers received, per handler
          spy: [{template: logentry, instances: [{variables: {code: 200}}, {...}]}]
        files:                                          # lines added to a file since the last call
          "{tmp}/access.log": [{level: info, code: 200}]  # a mapping compares a JSON line's keys
        metrics: {mixerd_rule_match_errors_total: 1}    # samples on /metrics after the call

Attribute values are plain YAML typed by the attribute manifest (Istio's plus the config's
attributemanifests); see `mixerd.testing_scenarios.values`. Only the keys an expectation names are
compared; within them, mappings are compared key by key as far as the expectation goes, lists item by
item and in full length; `referenced` is compared as a sorted set and `messageMatches` is a regular
expression searched in the message. `{tmp}` stands for the scenario's work folder everywhere.

The `spy` adapter (mixerd.testing_scenarios.spy) is always installed: it supports every check,
quota and report template, records each call, and answers as its params say (`checkStatus`,
`checkMessage`, `validDuration`, `validUseCount`, `quotaGrant`, `fail`).

`run_mixer(runtime)` (mixerd.testing_scenarios.server) is the same server on its own, for tests
that need more than calls and answers (reloads, metrics, failing adapters).
"""

from .model import Call, QuotaAsk, Scenario, load_scenario, parse_scenario
from .runner import ManualClock, ScenarioFailed, check_scenario, check_view, run_scenario
from .server import TEST_SETTINGS, RunningMixer, parse_metrics, run_mixer
from .spy import SPY, SpyCall, SpyHandler, SpyParams, SpyRecorder, spy_adapter
from .values import ScenarioError, plain, typed_bag

__all__ = [
    "SPY",
    "TEST_SETTINGS",
    "Call",
    "ManualClock",
    "QuotaAsk",
    "RunningMixer",
    "Scenario",
    "ScenarioError",
    "ScenarioFailed",
    "SpyCall",
    "SpyHandler",
    "SpyParams",
    "SpyRecorder",
    "check_scenario",
    "check_view",
    "load_scenario",
    "parse_metrics",
    "parse_scenario",
    "plain",
    "run_mixer",
    "run_scenario",
    "spy_adapter",
    "typed_bag",
]
