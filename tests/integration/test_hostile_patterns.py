"""Rules with `.matches()` against hostile request data, over a real server: every Check answers, and
Checks beside them are not held up (RE2 is linear in the text; Python's re needs years for some of
these). Each call has a 5 s deadline, which a backtracking engine would miss by far."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from mixerd.api.mixer.v1 import mixer_pb2, mixer_pb2_grpc
from mixerd.attribute import GLOBAL_WORDS, encode_attributes

pytestmark = pytest.mark.integration

_GWC = len(GLOBAL_WORDS)
_HEAD = "apiVersion: config.istio.io/v1alpha2\n"


def _deny_when(name: str, match: str) -> str:
    return (
        f"{_HEAD}kind: handler\nmetadata: {{name: {name}}}\n"
        f"spec: {{compiledAdapter: denier, params: {{status: {{code: 7, message: {name}}}}}}}\n---\n"
        f"{_HEAD}kind: rule\nmetadata: {{name: {name}}}\n"
        f"spec: {{match: '{match}', actions: [{{handler: {name}, instances: [nothing]}}]}}\n---\n"
    )


RULES = (
    f"{_HEAD}kind: instance\nmetadata: {{name: nothing}}\nspec: {{compiledTemplate: checknothing}}\n---\n"
    + _deny_when("nested", '"^(a+)+$".matches(request.headers["x-name"] | "")')
    + _deny_when("scan", '".*foo.*bar".matches(request.headers["x-body"] | "")')
    + _deny_when("dynamic", '(request.headers["x-pattern"] | "^$").matches(request.path | "/")')
)


def _check(stub: mixer_pb2_grpc.MixerStub, headers: dict[str, str], path: str = "/") -> str:
    """The verdict: "OK" or the denying handler's message."""
    values = {"request.headers": headers, "request.path": path}
    request = mixer_pb2.CheckRequest(attributes=encode_attributes(values, _GWC), global_word_count=_GWC)
    status = stub.Check(request, timeout=5).precondition.status
    return "OK" if status.code == 0 else status.message.split(":", 1)[1]


@pytest.fixture
def stub(tmp_path: Path, start_mixer_server: Callable[..., Any]) -> Any:
    (tmp_path / "rules.yaml").write_text(RULES)
    server = start_mixer_server(config=str(tmp_path))
    with grpc.insecure_channel(server.address) as channel:
        yield mixer_pb2_grpc.MixerStub(channel)


def test_hostile_headers_are_answered(stub: Any) -> None:
    assert _check(stub, {"x-name": "a" * 40 + "!"}) == "OK"  # 2^40 paths for a backtracking engine
    assert _check(stub, {"x-name": "a" * 40}) == "nested"
    assert _check(stub, {"x-body": "foo" + "x" * 60_000}) == "OK"
    assert _check(stub, {"x-body": "foo" + "x" * 60_000 + "bar"}) == "scan"


def test_hostile_patterns_from_a_request_are_answered(stub: Any) -> None:
    assert _check(stub, {"x-pattern": "(x+x+)+y"}, "/" + "x" * 5000) == "OK"
    assert _check(stub, {"x-pattern": "(x+x+)+y"}, "/" + "x" * 5000 + "y") == "dynamic"
    assert _check(stub, {"x-pattern": "("}, "/(") == "OK"  # a bad pattern: the match fails, so false
    assert _check(stub, {"x-pattern": "x" * 5000}, "/" + "x" * 5000) == "OK"  # too long to compile


def test_checks_beside_hostile_ones_are_unaffected(stub: Any) -> None:
    hostile = [{"x-name": "a" * 40 + "!", "x-body": "foo" + "x" * 60_000}] * 40
    with ThreadPoolExecutor(4) as pool:
        pending = [pool.submit(_check, stub, headers) for headers in hostile]
        ordinary = [_check(stub, {"x-name": "aaa"}) for _ in range(20)]
        assert [p.result() for p in pending] == ["OK"] * 40
    assert ordinary == ["nested"] * 20
