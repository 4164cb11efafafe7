"""Scenario files: reading and checking them, and bringing expectations to one canonical form.

The file format is documented in `mixerd.testing_scenarios` (the package docstring). Everything is
checked when the file is read, so a typo in an expectation fails with its place named instead of
silently matching nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from google.rpc import code_pb2

from ..attribute import Duration, Timestamp
from ..params import camel
from ..settings import SETTINGS
from .values import ScenarioError, timestamp_value

_NO_TIME = Duration(0)

CONDITIONS = ("EXACT", "ABSENCE")
OPERATIONS = ("REPLACE", "REMOVE", "APPEND")

_SCENARIO_KEYS = {"description", "settings", "clock", "config", "calls"}
_CALL_KEYS = {"check", "report", "expect", "advanceClock", "note"}
_CHECK_KEYS = {"attributes", "quotas", "dedupId", "timeout"}
_REPORT_KEYS = {"bags"}
_COMMON_EXPECT = {"rpcError", "adapterCalls", "files", "metrics"}
_CHECK_EXPECT = {
    "code",
    "message",
    "messageMatches",
    "validDuration",
    "validUseCount",
    "referenced",
    "quotas",
    "requestHeaders",
    "responseHeaders",
    "directResponse",
}
_QUOTA_EXPECT = {"granted", "validDuration", "code", "message", "referenced"}
_ERROR_EXPECT = {"code", "message", "messageMatches"}
_DIRECT_EXPECT = {"code", "body"}
_SETTINGS = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class QuotaAsk:
    amount: int
    best_effort: bool = False


@dataclass(frozen=True)
class Call:
    """One Check or Report of a scenario, with its expectation (canonical, see `_expect`)."""

    number: int  # 1-based
    kind: str  # "check" or "report"
    expect: Mapping[str, Any]
    attributes: Mapping[str, Any] = field(default_factory=dict)  # plain YAML, typed when sent
    quotas: Mapping[str, QuotaAsk] = field(default_factory=dict)
    dedup_id: str | None = None
    timeout: float | None = None
    bags: tuple[Mapping[str, Any], ...] = ()
    advance: Duration = _NO_TIME
    note: str = ""

    @property
    def label(self) -> str:
        return f"call {self.number} ({self.kind}{': ' + self.note if self.note else ''})"


@dataclass(frozen=True)
class Scenario:
    name: str
    config: Mapping[str, str]  # file name -> YAML text; `{tmp}` is replaced when it is written
    calls: tuple[Call, ...]
    description: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)
    clock: Timestamp | None = None  # set: a manual clock starting here, moved by advanceClock
    path: Path | None = None


def load_scenario(path: str | Path) -> Scenario:
    """The scenario in a YAML file; ScenarioError names the file and the place of any problem."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ScenarioError(f"{p}: {e}") from None
    return parse_scenario(data, name=p.stem, path=p)


def parse_scenario(data: Any, name: str = "scenario", path: Path | None = None) -> Scenario:
    where = str(path) if path is not None else name
    m = _mapping(data, where)
    _known(m, _SCENARIO_KEYS, where)
    if "config" not in m or "calls" not in m:
        raise ScenarioError(f"{where}: a scenario needs config and calls")
    raw_calls = m["calls"]
    if not isinstance(raw_calls, list) or not raw_calls:
        raise ScenarioError(f"{where}.calls: expected a non-empty list of calls")
    calls = tuple(_call(c, i + 1, f"{where}.calls[{i}]") for i, c in enumerate(raw_calls))
    clock = None
    if m.get("clock") is not None:
        try:
            clock = timestamp_value(m["clock"])
        except ValueError as e:
            raise ScenarioError(f"{where}.clock: {e}") from None
    return Scenario(
        name=name,
        config=_config(m["config"], f"{where}.config"),
        calls=calls,
        description=str(m.get("description") or ""),
        settings=_settings(m.get("settings"), f"{where}.settings"),
        clock=clock,
        path=path,
    )


# -- pieces -------------------------------------------------------------------------------------------


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{where}: expected a mapping, got {value!r}")
    return value


def _known(m: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(map(str, m)) - known)
    if unknown:
        raise ScenarioError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")


def _config(raw: Any, where: str) -> dict[str, str]:
    """`config` as file name -> text: a string or a list of documents is one file, config.yaml; a
    mapping names the files."""
    if isinstance(raw, Mapping):
        return {str(name): _config_text(v, f"{where}.{name}") for name, v in raw.items()}
    return {"config.yaml": _config_text(raw, where)}


def _config_text(raw: Any, where: str) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list):
        return yaml.safe_dump_all(raw, sort_keys=False)
    raise ScenarioError(f"{where}: expected YAML text or a list of resource documents")


def _settings(raw: Any, where: str) -> dict[str, Any]:
    """Server settings by name (camelCase or snake_case), each read as its flag would be."""
    if raw is None:
        return {}
    out = {}
    for key, value in _mapping(raw, where).items():
        name = re.sub(r"(?<!^)([A-Z])", lambda mo: "_" + mo.group(1).lower(), str(key))
        setting = _SETTINGS.get(name)
        if setting is None:
            known = ", ".join(sorted(camel(s) for s in _SETTINGS))
            raise ScenarioError(f"{where}.{key}: unknown setting (known: {known})")
        try:
            out[name] = setting.parse(str(value))
        except ValueError as e:
            raise ScenarioError(f"{where}.{key}: {e}") from None
    return out


def _call(raw: Any, number: int, where: str) -> Call:
    m = _mapping(raw, where)
    _known(m, _CALL_KEYS, where)
    kinds = [k for k in ("check", "report") if k in m]
    if len(kinds) != 1:
        raise ScenarioError(f"{where}: a call is either check or report")
    kind = kinds[0]
    body = _mapping(m[kind] or {}, f"{where}.{kind}")
    expect = _expect(kind, m.get("expect") or {}, f"{where}.expect")
    advance = _duration(m.get("advanceClock", "0"), f"{where}.advanceClock")
    note = str(m.get("note") or "")
    if kind == "report":
        _known(body, _REPORT_KEYS, f"{where}.report")
        bags = body.get("bags")
        if not isinstance(bags, list) or not bags:
            raise ScenarioError(f"{where}.report.bags: expected a non-empty list of attribute mappings")
        return Call(number, kind, expect, bags=tuple(bags), advance=advance, note=note)
    _known(body, _CHECK_KEYS, f"{where}.check")
    timeout = body.get("timeout")
    return Call(
        number,
        kind,
        expect,
        attributes=_mapping(body.get("attributes") or {}, f"{where}.check.attributes"),
        quotas=_quotas(body.get("quotas"), f"{where}.check.quotas"),
        dedup_id=None if body.get("dedupId") is None else str(body["dedupId"]),
        timeout=None if timeout is None else _duration(timeout, f"{where}.check.timeout").total_seconds(),
        advance=advance,
        note=note,
    )


def _quotas(raw: Any, where: str) -> dict[str, QuotaAsk]:
    """`{name: 3}` or `{name: {amount: 3, bestEffort: true}}`."""
    out = {}
    for name, value in (_mapping(raw, where) if raw is not None else {}).items():
        if isinstance(value, int) and not isinstance(value, bool):
            out[str(name)] = QuotaAsk(value)
            continue
        q = _mapping(value, f"{where}.{name}")
        _known(q, {"amount", "bestEffort"}, f"{where}.{name}")
        out[str(name)] = QuotaAsk(int(q.get("amount", 1)), bool(q.get("bestEffort", False)))
    return out


def _duration(raw: Any, where: str) -> Duration:
    try:
        return Duration.parse(str(raw))
    except ValueError as e:
        raise ScenarioError(f"{where}: {e}") from None


def code_name(raw: Any, where: str) -> str:
    """A google.rpc code given by name or number, as its name."""
    try:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return code_pb2.Code.Name(raw)
        code_pb2.Code.Value(str(raw))
        return str(raw)
    except ValueError:
        known = "OK, PERMISSION_DENIED, ..."
        raise ScenarioError(f"{where}: {raw!r} is not a google.rpc code ({known})") from None


def _regex(raw: Any, where: str) -> str:
    try:
        re.compile(str(raw))
    except re.error as e:
        raise ScenarioError(f"{where}: not a regular expression: {e}") from None
    return str(raw)


def _expect(kind: str, raw: Any, where: str) -> dict[str, Any]:
    """The expectation in canonical form: codes by name, durations as Go text, references and header
    operations as sorted/ordered text lines (see the package docstring)."""
    m = _mapping(raw, where)
    _known(m, _COMMON_EXPECT | (_CHECK_EXPECT if kind == "check" else set()), where)
    out: dict[str, Any] = {}
    for key, value in m.items():
        here = f"{where}.{key}"
        if key == "code":
            out[key] = code_name(value, here)
        elif key == "messageMatches":
            out[key] = _regex(value, here)
        elif key == "message":
            out[key] = str(value)
        elif key == "validDuration":
            out[key] = str(_duration(value, here))
        elif key == "validUseCount":
            out[key] = int(value)
        elif key == "referenced":
            out[key] = references(value, here)
        elif key in ("requestHeaders", "responseHeaders"):
            out[key] = [header_operation(op, f"{here}[{i}]") for i, op in enumerate(value or [])]
        elif key == "quotas":
            out[key] = {str(n): _quota_expect(q, f"{here}.{n}") for n, q in _mapping(value, here).items()}
        elif key == "directResponse":
            out[key] = None if value is None else _direct(value, here)
        elif key == "rpcError":
            out[key] = None if value is None else _error(value, here)
        elif key == "adapterCalls":
            out[key] = _adapter_calls(value, here)
        elif key == "files":
            files = _mapping(value, here)
            out[key] = {str(path): _lines(lines, f"{here}.{path}") for path, lines in files.items()}
        elif key == "metrics":
            out[key] = {str(k): float(v) for k, v in _mapping(value, here).items()}
    return out


def references(raw: Any, where: str) -> list[str]:
    """`name CONDITION` or `map::key CONDITION` lines, checked and sorted."""
    if not isinstance(raw, list):
        raise ScenarioError(f"{where}: expected a list such as ['request.headers::x-user EXACT']")
    out = []
    for i, line in enumerate(raw):
        name, _, condition = str(line).rpartition(" ")
        if not name or condition not in CONDITIONS:
            raise ScenarioError(f"{where}[{i}]: {line!r} is not 'name EXACT|ABSENCE' (or 'map::key ...')")
        out.append(f"{name.strip()} {condition}")
    return sorted(out)


def header_operation(raw: Any, where: str) -> str:
    """`REPLACE name: value`, `APPEND name: value` or `REMOVE name`."""
    text = str(raw)
    op, _, rest = text.partition(" ")
    if op not in OPERATIONS or not rest:
        raise ScenarioError(f"{where}: {text!r} is not 'REPLACE|APPEND name: value' or 'REMOVE name'")
    if op == "REMOVE":
        return f"REMOVE {rest.strip()}"
    name, colon, value = rest.partition(":")
    if not colon:
        raise ScenarioError(f"{where}: {text!r} needs 'name: value'")
    return f"{op} {name.strip()}: {value.strip()}"


def _quota_expect(raw: Any, where: str) -> dict[str, Any]:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return {"granted": raw}
    m = _mapping(raw, where)
    _known(m, _QUOTA_EXPECT, where)
    out: dict[str, Any] = {}
    for key, value in m.items():
        if key == "granted":
            out[key] = int(value)
        elif key == "validDuration":
            out[key] = str(_duration(value, f"{where}.{key}"))
        elif key == "code":
            out[key] = code_name(value, f"{where}.{key}")
        elif key == "referenced":
            out[key] = references(value, f"{where}.{key}")
        else:
            out[key] = str(value)
    return out


def _direct(raw: Any, where: str) -> dict[str, Any]:
    m = _mapping(raw, where)
    _known(m, _DIRECT_EXPECT, where)
    return {k: (int(v) if k == "code" else str(v)) for k, v in m.items()}


def _error(raw: Any, where: str) -> dict[str, Any]:
    m = _mapping(raw, where)
    _known(m, _ERROR_EXPECT, where)
    if "code" not in m:
        raise ScenarioError(f"{where}: needs the gRPC code (e.g. INTERNAL)")
    out: dict[str, Any] = {"code": code_name(m["code"], f"{where}.code")}
    if "message" in m:
        out["message"] = str(m["message"])
    if "messageMatches" in m:
        out["messageMatches"] = _regex(m["messageMatches"], f"{where}.messageMatches")
    return out


def _adapter_calls(raw: Any, where: str) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for handler, calls in _mapping(raw, where).items():
        here = f"{where}.{handler}"
        if not isinstance(calls, list):
            raise ScenarioError(f"{here}: expected a list of calls ({{template, instances}})")
        items = []
        for i, call in enumerate(calls):
            c = _mapping(call, f"{here}[{i}]")
            _known(c, {"template", "instances"}, f"{here}[{i}]")
            instances = c.get("instances") or []
            if not isinstance(instances, list):
                raise ScenarioError(f"{here}[{i}].instances: expected a list of field mappings")
            items.append({"template": str(c.get("template", "")), "instances": list(instances)})
        out[str(handler)] = items
    return out


def _lines(raw: Any, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise ScenarioError(f"{where}: expected a list of lines (text, or a mapping for a JSON line)")
    return list(raw)
