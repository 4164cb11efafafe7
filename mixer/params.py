"""Typed parameter models: a handler's `params` YAML read into a dataclass, strictly, with field paths.

An adapter declares its params as a dataclass whose field defaults are its default config. `read_params`
reads the YAML mapping the way Mixer read a params proto from JSON (MIXER.md 5.1): lowerCamel and
snake_case names both work, durations take Go-style text (`"1s"`, `"500ms"`) or a number of seconds,
enums take their names (or numbers), and an unknown field is an error. Every problem is collected with
its path (`.quotas[0].maxAmount: expected an integer, got 'ten'`), never only the first.

Supported field types: str, int, float, bool, Duration, IntEnum subclasses, nested dataclasses,
list[T], tuple[T, ...], dict[str, T], T | None, and Any (kept as read). A field without a default is
required; a field with `init=False` is not read (it is derived in `__post_init__`).

A dataclass may define `check(self) -> Iterable[tuple[str, str]]` for rules across fields; it is called
after a clean read and its (path, reason) pairs are reported the same way.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from .attribute.godur import format_go_duration, parse_go_duration
from .attribute.values import Duration

T = TypeVar("T")

Problem = tuple[str, str]  # (field path such as ".quotas[0].name", reason)


class ParamsError(ValueError):
    """Params that do not fit the model; `problems` lists every (path, reason)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path or '.'}: {reason}" for path, reason in problems))


def camel(name: str) -> str:
    """snake_case -> lowerCamel, the JSON name protobuf gives a field."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def read_params(model: type[T], data: Any, path: str = "") -> T:
    """`data` (a mapping from YAML, or None for all defaults) as an instance of dataclass `model`."""
    problems: list[Problem] = []
    value = _read_dataclass(model, {} if data is None else data, path, problems)
    if not problems:
        problems.extend(_run_checks(value, path))
    if problems:
        raise ParamsError(problems)
    return value


def params_to_dict(value: Any) -> Any:
    """A params dataclass back as plain data with lowerCamel names (for logs, hashing and docs).

    `read_params(model, params_to_dict(p)) == p` for every params value `p` read by `read_params`.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {camel(f.name): params_to_dict(getattr(value, f.name)) for f in _settable(type(value))}
    if isinstance(value, Duration):
        return format_go_duration(value)
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, Mapping):
        return {str(k): params_to_dict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [params_to_dict(v) for v in value]
    return value


def field_names(model: type) -> dict[str, str]:
    """Accepted spelling -> field name, for both snake_case and lowerCamel."""
    return _field_names(model)


@functools.cache
def _field_names(model: type) -> dict[str, str]:
    names: dict[str, str] = {}
    for f in _settable(model):
        names[f.name] = f.name
        names[camel(f.name)] = f.name
    return names


@functools.cache
def _settable(model: type) -> tuple[dataclasses.Field[Any], ...]:
    """The fields params can set: those `__init__` takes."""
    return tuple(f for f in dataclasses.fields(model) if f.init)


@functools.cache
def _required(model: type) -> tuple[str, ...]:
    missing = dataclasses.MISSING
    return tuple(f.name for f in _settable(model) if f.default is missing and f.default_factory is missing)


@functools.cache
def _hints(model: type) -> dict[str, Any]:
    return typing.get_type_hints(model)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _read_dataclass(model: type, data: Any, path: str, problems: list[Problem]) -> Any:
    if not isinstance(data, Mapping):
        problems.append((path, f"expected a mapping, got {_describe(data)}"))
        return _defaults(model)
    names = _field_names(model)
    hints = _hints(model)
    kwargs: dict[str, Any] = {}
    for key, raw in data.items():
        name = names.get(str(key))
        if name is None:
            known = ", ".join(camel(f.name) for f in _settable(model))
            reason = f"unknown field (known: {known})" if known else "unknown field (this takes no params)"
            problems.append((f"{path}.{key}", reason))
            continue
        if name in kwargs:
            problems.append((f"{path}.{key}", f"field given twice (as {camel(name)} and {name})"))
            continue
        kwargs[name] = _read(hints[name], raw, f"{path}.{camel(name)}", problems)
    missing = [name for name in _required(model) if name not in kwargs]
    for name in missing:
        problems.append((f"{path}.{camel(name)}", "missing: this field has no default"))
    if missing:
        return _defaults(model)
    try:
        return model(**kwargs)
    except (TypeError, ValueError) as e:  # raised by the model's own __post_init__
        problems.append((path, str(e)))
        return _defaults(model)


def _defaults(model: type) -> Any:
    """A stand-in for a dataclass that could not be read (a problem is reported already)."""
    try:
        return model()
    except Exception:
        return None


def _read(hint: Any, raw: Any, path: str, problems: list[Problem]) -> Any:
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(options) != 1:
            raise TypeError(f"params model field type {hint!r} is not supported (at {path}): use T | None")
        if raw is None:
            return None
        return _read(options[0], raw, path, problems)
    if hint is Any:
        return raw
    if origin in (list, tuple, Iterable) or hint in (list, tuple):
        (item,) = typing.get_args(hint)[:1] or (Any,)
        if raw is None:
            return () if origin is tuple or hint is tuple else []
        if not isinstance(raw, list):
            problems.append((path, f"expected a list, got {_describe(raw)}"))
            return []
        items = [_read(item, v, f"{path}[{i}]", problems) for i, v in enumerate(raw)]
        return tuple(items) if origin is tuple or hint is tuple else items
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        args = typing.get_args(hint)
        item = args[1] if len(args) == 2 else Any
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            problems.append((path, f"expected a mapping, got {_describe(raw)}"))
            return {}
        return {str(k): _read(item, v, f"{path}[{str(k)!r}]", problems) for k, v in raw.items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _read_dataclass(hint, {} if raw is None else raw, path, problems)
    reader = _SCALARS.get(hint)
    if reader is None and isinstance(hint, type) and issubclass(hint, enum.Enum):
        reader = _enum_reader(hint)
    if reader is None:
        raise TypeError(f"params model field type {hint!r} is not supported (at {path})")
    try:
        return reader(raw)
    except (TypeError, ValueError) as e:
        problems.append((path, str(e)))
        return None


def _read_str(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool) or raw is None:
        raise ValueError(f"expected a string, got {_describe(raw)}")
    if isinstance(raw, int | float):
        return str(raw)  # YAML reads `code: 200` as a number; a string field takes its text
    raise ValueError(f"expected a string, got {_describe(raw)}")


def _read_int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError(f"expected an integer, got {_describe(raw)}")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str):  # protobuf JSON writes int64 as a string
        try:
            return int(raw.strip(), 10)
        except ValueError:
            pass
    raise ValueError(f"expected an integer, got {_describe(raw)}")


def _read_float(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError(f"expected a number, got {_describe(raw)}")
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw)
        except ValueError:
            pass
    raise ValueError(f"expected a number, got {_describe(raw)}")


def _read_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise ValueError(f"expected true or false, got {_describe(raw)}")


def _read_duration(raw: Any) -> Duration:
    if isinstance(raw, Duration):
        return raw
    if isinstance(raw, str):
        try:
            return Duration(parse_go_duration(raw.strip()))
        except ValueError:
            raise ValueError(f"expected a duration such as '1s' or '500ms', got {_describe(raw)}") from None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        if isinstance(raw, float) and not math.isfinite(raw):
            raise ValueError(f"expected a duration such as '1s' or '500ms', got {_describe(raw)}")
        nanos = raw * 1_000_000_000 if isinstance(raw, int) else round(raw * 1_000_000_000)
        if not -_INT64_MAX - 1 <= nanos <= _INT64_MAX:
            raise ValueError(f"{_describe(raw)} seconds is out of range (at most {_MAX_DURATION})")
        return Duration(nanos)  # a bare number is seconds
    raise ValueError(f"expected a duration such as '1s' or '500ms', got {_describe(raw)}")


_INT64_MAX = (1 << 63) - 1
_MAX_DURATION = format_go_duration(_INT64_MAX)  # Go's time.Duration, about 292 years


def _enum_reader(kind: type[enum.Enum]) -> Any:
    def read(raw: Any) -> enum.Enum:
        if isinstance(raw, str) and raw in kind.__members__:
            return kind[raw]
        if isinstance(raw, int) and not isinstance(raw, bool):
            try:
                return kind(raw)
            except ValueError:
                pass
        choices = ", ".join(kind.__members__)
        raise ValueError(f"expected one of {choices}, got {_describe(raw)}")

    return read


_SCALARS: dict[Any, Any] = {
    str: _read_str,
    int: _read_int,
    float: _read_float,
    bool: _read_bool,
    Duration: _read_duration,
}


def _run_checks(value: Any, path: str) -> list[Problem]:
    """Each dataclass's own `check()`, depth first, with paths made absolute."""
    problems: list[Problem] = []
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            problems.extend(_run_checks(getattr(value, f.name), f"{path}.{camel(f.name)}"))
        check = getattr(value, "check", None)
        if callable(check):
            for item in check() or ():
                if not (isinstance(item, tuple) and len(item) == 2 and all(isinstance(x, str) for x in item)):
                    model = type(value).__qualname__
                    raise TypeError(f"{model}.check() must yield (path, reason) string pairs, got {item!r}")
                problems.append((path + item[0], item[1]))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            problems.extend(_run_checks(item, f"{path}[{i}]"))
    elif isinstance(value, dict):
        for key, item in value.items():
            problems.extend(_run_checks(item, f"{path}[{key!r}]"))
    return problems
