"""The lifecycle every mixerd adapter keeps (docs/adapters.md), checked by the checks mixerd holds its
own adapters to: one test per check."""

from mixerd.testing.conformance import conformance_tests

# Besides the defaults, params that take the handler down more of its paths (boxing at the first strike).
test_conformance = conformance_tests("strikes", params={"maxStrikes": 1, "exempt": ["nobody"]})
