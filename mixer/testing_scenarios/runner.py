"""Running a scenario against a real mixerd and comparing what came back with what was expected.

What came back is first turned into the same canonical plain data as the expectation, then
*projected* onto the expectation's keys (only what a scenario names is compared), so a mismatch shows
as a short YAML diff of expected against got.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import grpc
import yaml

from ..adapter import AdapterInfo
from ..api.mixer.v1 import mixer_pb2, mixer_pb2_grpc
from ..attribute import GLOBAL_WORDS, Duration, ValueType, decode_references, encode_report
from ..attribute.compressed import encode_attributes
from ..client.calls import code_name
from ..plugins import load_adapters
from ..runtime import Runtime
from ..settings import Settings
from .model import Call, Scenario, load_scenario
from .server import TEST_SETTINGS, RunningMixer, normalize_metric_key, run_mixer
from .spy import SPY, SpyCall, SpyRecorder, spy_adapter
from .values import ScenarioError, plain, typed_bag

#: How long to wait for a file's expected lines (stdio writes in the background).
FILE_WAIT_S = 3.0

_GWC = len(GLOBAL_WORDS)
_OPS = mixer_pb2.HeaderOperation.Operation


class ScenarioFailed(AssertionError):
    """Some calls did not answer as expected; the message holds a diff per call."""


class ManualClock:
    """A clock that only moves when told (nanoseconds since the epoch)."""

    def __init__(self, start_ns: int) -> None:
        self._now = start_ns
        self._lock = threading.Lock()

    def __call__(self) -> int:
        return self._now

    def advance(self, ns: int) -> None:
        with self._lock:
            self._now += ns


def check_scenario(
    scenario: Scenario | str | Path,
    workdir: Path,
    *,
    adapters: Mapping[str, AdapterInfo] | None = None,
    settings: Settings | None = None,
) -> None:
    """Run the scenario; ScenarioFailed (an AssertionError) with a readable diff when it does not pass."""
    loaded = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    failures = run_scenario(loaded, workdir, adapters=adapters, settings=settings)
    if failures:
        where = loaded.path or loaded.name
        raise ScenarioFailed(f"scenario {where}: {len(failures)} call(s) differ\n\n" + "\n\n".join(failures))


def run_scenario(
    scenario: Scenario,
    workdir: Path,
    *,
    adapters: Mapping[str, AdapterInfo] | None = None,
    settings: Settings | None = None,
) -> list[str]:
    """Write the config under `workdir`, start mixerd on it, make the calls; one text per failed call.

    `adapters` defaults to every installed adapter; the `spy` adapter is always added. `{tmp}` in the
    config and in expectations stands for `workdir`.
    """
    tmp = str(workdir)
    folder = workdir / "config"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in scenario.config.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.replace("{tmp}", tmp), encoding="utf-8")
    chosen = dataclasses.replace(settings or TEST_SETTINGS, **scenario.settings)
    recorder = SpyRecorder()
    clock: ManualClock | Callable[[], int] = (
        ManualClock(int(scenario.clock)) if scenario.clock is not None else time.time_ns
    )
    runtime = Runtime(
        {**(adapters if adapters is not None else load_adapters()), SPY: spy_adapter(recorder)},
        folder=folder,
        default_namespace=chosen.config_default_namespace,
        clock=clock,
    )
    failures = []
    with run_mixer(runtime, chosen) as mixer, grpc.insecure_channel(mixer.address) as channel:
        stub = mixer_pb2_grpc.MixerStub(channel)
        session = _Session(scenario, mixer, stub, recorder, tmp, chosen.config_default_namespace)
        for call in scenario.calls:
            if call.advance:
                if not isinstance(clock, ManualClock):
                    raise ScenarioError(f"{call.label}: advanceClock needs a scenario clock")
                clock.advance(call.advance)
            problem = session.run(call)
            if problem:
                failures.append(problem)
    return failures


class _Session:
    def __init__(
        self,
        scenario: Scenario,
        mixer: RunningMixer,
        stub: mixer_pb2_grpc.MixerStub,
        recorder: SpyRecorder,
        tmp: str,
        namespace: str,
    ) -> None:
        self.scenario = scenario
        self.mixer = mixer
        self.stub = stub
        self.recorder = recorder
        self.tmp = tmp
        self.namespace = namespace
        self.offsets: dict[str, int] = {}  # lines of each expected file already seen
        self.manifest: Mapping[str, ValueType] = mixer.runtime.table.snapshot.manifest

    def run(self, call: Call) -> str:
        expect = _substitute(call.expect, self.tmp)
        if "adapterCalls" in expect:  # a handler named without dots is one of the default namespace
            expect["adapterCalls"] = {
                h if "." in h else f"{h}.handler.{self.namespace}": calls
                for h, calls in expect["adapterCalls"].items()
            }
        self.recorder.take()  # only this call's adapter calls count
        got = self._check(call) if call.kind == "check" else self._report(call)
        if "adapterCalls" in expect:
            got["adapterCalls"] = self._adapter_calls(self.recorder.take())
        if "files" in expect:
            files = expect["files"]
            got["files"] = {path: self._new_lines(path, len(lines)) for path, lines in files.items()}
        if "metrics" in expect:
            samples = self.mixer.metrics()
            got["metrics"] = {key: samples.get(normalize_metric_key(key), 0.0) for key in expect["metrics"]}
        return render_mismatch(self.scenario, call, expect, got)

    # -- the calls ------------------------------------------------------------------------------------

    def _check(self, call: Call) -> dict[str, Any]:
        where = f"{self.scenario.path or self.scenario.name}: {call.label}: attributes"
        values = typed_bag(call.attributes, self.manifest, where)
        request = mixer_pb2.CheckRequest(attributes=encode_attributes(values, _GWC), global_word_count=_GWC)
        request.deduplication_id = call.dedup_id or f"{self.scenario.name}-{call.number}-{uuid.uuid4().hex}"
        for name, ask in call.quotas.items():
            request.quotas[name].CopyFrom(
                mixer_pb2.CheckRequest.QuotaParams(amount=ask.amount, best_effort=ask.best_effort)
            )
        try:
            response = self.stub.Check(request, timeout=call.timeout)
        except grpc.RpcError as e:
            return {"rpcError": _rpc_error(e)}
        return check_view(response, lambda name: _is_map(self.manifest, values, name))

    def _report(self, call: Call) -> dict[str, Any]:
        where = f"{self.scenario.path or self.scenario.name}: {call.label}: bags"
        bags = [typed_bag(bag, self.manifest, f"{where}[{i}]") for i, bag in enumerate(call.bags)]
        try:
            self.stub.Report(encode_report(bags, _GWC))
        except grpc.RpcError as e:
            return {"rpcError": _rpc_error(e)}
        return {"rpcError": None}

    # -- what adapters saw ----------------------------------------------------------------------------

    def _adapter_calls(self, calls: list[SpyCall]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for c in calls:
            out.setdefault(c.handler, []).append({"template": c.template, "instances": plain(c.instances)})
        return out

    def _new_lines(self, path: str, wanted: int) -> list[Any]:
        """The lines added to `path` since the last call (waiting up to FILE_WAIT_S for `wanted`)."""
        deadline = time.monotonic() + FILE_WAIT_S
        while True:
            lines = _read_lines(path)[self.offsets.get(path, 0) :]
            if len(lines) >= wanted or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.offsets[path] = self.offsets.get(path, 0) + len(lines)
        return [_json_or_text(line) for line in lines]


# -- views ------------------------------------------------------------------------------------------------


def check_view(response: mixer_pb2.CheckResponse, is_string_map: Callable[[str], bool]) -> dict[str, Any]:
    """A CheckResponse in the canonical form expectations use."""
    pre = response.precondition
    directive = pre.route_directive
    view: dict[str, Any] = {
        "rpcError": None,
        "code": code_name(pre.status.code),
        "message": pre.status.message,
        "validDuration": _duration(pre.valid_duration),
        "validUseCount": pre.valid_use_count,
        "referenced": _references(pre.referenced_attributes, is_string_map),
        "quotas": {
            name: {
                "granted": q.granted_amount,
                "validDuration": _duration(q.valid_duration),
                "code": code_name(q.status.code),
                "message": q.status.message,
                "referenced": _references(q.referenced_attributes, is_string_map),
            }
            for name, q in sorted(response.quotas.items())
        },
        "requestHeaders": [_operation(op) for op in directive.request_header_operations],
        "responseHeaders": [_operation(op) for op in directive.response_header_operations],
        "directResponse": None,
    }
    if directive.direct_response_code or directive.direct_response_body:
        code, body = directive.direct_response_code, directive.direct_response_body
        view["directResponse"] = {"code": code, "body": body}
    return view


def _duration(msg: Any) -> str:
    return str(Duration.from_parts(msg.seconds, msg.nanos))


def _references(msg: mixer_pb2.ReferencedAttributes, is_string_map: Callable[[str], bool]) -> list[str]:
    out = []
    for ref in decode_references(msg, is_string_map):
        name = f"{ref.name}::{ref.key}" if ref.key is not None else ref.name
        out.append(f"{name} {ref.condition.name}")
    return sorted(out)


def _operation(op: mixer_pb2.HeaderOperation) -> str:
    kind = _OPS.Name(op.operation)
    return f"REMOVE {op.name}" if kind == "REMOVE" else f"{kind} {op.name}: {op.value}"


def _is_map(manifest: Mapping[str, ValueType], sent: Mapping[str, Any], name: str) -> bool:
    return manifest.get(name) is ValueType.STRING_MAP or isinstance(sent.get(name), Mapping)


def _rpc_error(e: grpc.RpcError) -> dict[str, Any]:
    if isinstance(e, grpc.Call):
        return {"code": e.code().name, "message": e.details() or ""}
    return {"code": "UNKNOWN", "message": str(e)}


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []


def _json_or_text(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return line


def _substitute(value: Any, tmp: str) -> Any:
    if isinstance(value, str):
        return value.replace("{tmp}", tmp)
    if isinstance(value, Mapping):
        return {_substitute(k, tmp): _substitute(v, tmp) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, tmp) for v in value]
    return value


# -- comparing ----------------------------------------------------------------------------------------------


def project(expected: Any, got: Any) -> Any:
    """`got` cut down to what `expected` names: mappings to the expected keys (recursively, lists
    item by item); a `messageMatches` pattern stands for the message when it matches. An empty
    mapping in an expectation means "empty", so it is compared whole."""
    if isinstance(expected, Mapping) and isinstance(got, Mapping):
        if not expected:
            return got
        out: dict[str, Any] = {}
        for key, want in expected.items():
            if key == "messageMatches":
                text = got.get("message")
                matched = isinstance(text, str) and re.search(want, text) is not None
                out[key] = want if matched else text
            elif key in got:
                out[key] = project(want, got[key])
            else:
                out[key] = "<missing>"
        return out
    if isinstance(expected, list) and isinstance(got, list):
        return [project(expected[i], g) if i < len(expected) else g for i, g in enumerate(got)]
    return got


def _project_call(expected: Mapping[str, Any], got: Mapping[str, Any]) -> dict[str, Any]:
    """A call's answer projected on its expectation; an RPC that failed unexpectedly always shows."""
    out = project(expected, got) if expected else {}
    if got.get("rpcError") is not None and "rpcError" not in expected:
        out["rpcError"] = got["rpcError"]
    return out


def render_mismatch(
    scenario: Scenario, call: Call, expected: Mapping[str, Any], got: Mapping[str, Any]
) -> str:
    """ "" when `got` matches `expected`; otherwise a diff of the two, and the whole answer."""
    seen = _project_call(expected, got)
    if seen == expected:
        return ""
    want = _dump(expected).splitlines()
    have = _dump(seen).splitlines()
    diff = "\n".join(difflib.unified_diff(want, have, "expected", "got", n=1000, lineterm=""))
    where = scenario.path or scenario.name
    full = _dump(got).rstrip().replace("\n", "\n    ")
    return f"{where}: {call.label} differs:\n{diff}\n  whole answer:\n    {full}"


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True, width=200)
