"""Whatever a config folder holds, loading it gives a config or a rejection that names each problem's file,
never another exception, and never a stall.

Hypothesis writes folders of YAML files: resources built from the vocabulary of real ones (kinds,
field names, adapter and template names, expressions, durations) mixed at random with wrong types,
hostile strings and nesting, `kind: List` documents, and files of raw text or bytes. The loader must
answer each with a Snapshot or ConfigRejected whose errors each name a file that is in the folder.

A longer run: `MIXERD_FUZZ_EXAMPLES=5000 pytest tests/unit/config/test_fuzz_loader.py`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixerd.config import ConfigRejected, load_snapshot
from mixerd.plugins import load_adapters

ADAPTERS = load_adapters()
EXAMPLES = int(os.environ.get("MIXERD_FUZZ_EXAMPLES", "150"))

_KINDS = ["handler", "instance", "rule", "attributemanifest", "ratelimitconfig", "denier", "List", "x"]
_FIELDS = [
    "compiledAdapter", "compiled_adapter", "params", "compiledTemplate", "match", "actions", "handler",
    "instances", "name", "requestHeaderOperations", "responseHeaderOperations", "values", "operation",
    "attributes", "valueType", "attributeBindings", "dimensions", "value", "quotas", "maxAmount",
    "validDuration", "overrides", "status", "code", "message", "domain", "descriptors", "key",
    "rate_limit", "unit", "requests_per_unit", "replaces", "shadow_mode", "items", "entryType",
    "overrides", "providerUrl", "metrics", "kind", "labelNames", "outputAsJson", "redisServerUrl",
]  # fmt: skip
_WORDS = [
    "denier", "memquota", "redisquota", "listchecker", "prometheus", "stdio", "statsd", "noop",
    "checknothing", "quota", "metric", "logentry", "listentry", "tracespan", "kubernetes",
    "true", 'request.path == "/"', 'request.headers["x"].matches("(a+)+$")', "source.ip | ip(\"0\")",
    "1s", "500ms", "-1s", "1h5m", "second", "minute", "fortnight", "STRING", "INT64", "COUNTER",
    "istio-system", "default", "", "\x00", "${env:NOPE}", "$${x}", "*", "a" * 300, "ß", "'", "{{.x}}",
    "redis://:p@r:1", "10.0.0.0/8", "(", ")", "||", "&&",
]  # fmt: skip

_SCALARS = st.one_of(
    st.sampled_from(_WORDS),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
)


def _values(depth: int) -> st.SearchStrategy[Any]:
    if depth <= 0:
        return _SCALARS
    inner = _values(depth - 1)
    keys = st.sampled_from(_FIELDS) | st.text(max_size=8)
    return _SCALARS | st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=5)


@st.composite
def _resource(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(_KINDS))
    doc: dict[str, Any] = {"apiVersion": draw(st.sampled_from(["config.istio.io/v1alpha2", "v1", "x"]))}
    doc["kind"] = kind
    if kind == "List":
        doc["items"] = draw(st.lists(_resource_flat(), max_size=3))
        return doc
    if draw(st.booleans()):
        doc["metadata"] = draw(
            st.fixed_dictionaries(
                {"name": st.sampled_from(_WORDS) | st.text(max_size=8)},
                optional={"namespace": st.sampled_from(_WORDS), "uid": st.text(max_size=4), "x": _SCALARS},
            )
        )
    doc["spec"] = draw(_values(3))
    return doc


def _resource_flat() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "apiVersion": st.just("config.istio.io/v1alpha2"),
            "kind": st.sampled_from(_KINDS[:5]),
            "metadata": st.fixed_dictionaries({"name": st.sampled_from(_WORDS)}),
            "spec": _values(2),
        }
    )


def _yaml(documents: list[Any]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True)


_FILE = st.one_of(
    st.lists(_resource(), min_size=1, max_size=4).map(_yaml),
    st.text(max_size=200),  # anything at all, YAML or not
    st.sampled_from(
        ["a: b: c", "- [", "&a [*a]", "!!python/object:os.system x", "%YAML 9.9\n---\n", "---\n..."]
    ),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=st.dictionaries(st.sampled_from(["a.yaml", "b.yml", "sub/c.yaml"]), _FILE, min_size=1))
def test_any_folder_loads_or_is_rejected_with_each_problem_named(files: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, text in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            snapshot = load_snapshot(folder, ADAPTERS)
        except ConfigRejected as e:
            assert e.errors, "a rejection names at least one problem"
            for error in e.errors:
                assert error.file in files and str(error).startswith(error.file), error
        else:  # a config accepted is whole: every rule's handlers and instances are in it
            for rule in snapshot.rules:
                for action in rule.actions:
                    assert action.handler in snapshot.handlers, (rule.fqn, action.handler)
                    assert set(action.instances) <= set(snapshot.instances), (rule.fqn, action.instances)
