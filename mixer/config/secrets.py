"""Secrets out of rule files: `${env:NAME}` and `${file:/path}` in handler params, resolved at load.

Any string in a handler's params may hold references, alone or inside other text
(`redis://:${env:REDIS_PASSWORD}@redis:6379`): `${env:NAME}` is the environment variable NAME,
`${file:/path}` the contents of that file (an absolute path, a regular file of at most 64 KiB, one
trailing newline dropped: what a Kubernetes Secret mounted as a volume holds). `$${` is a literal `${`.
A reference that cannot be resolved is a config error naming the place and the reference, never a
value.

A resolved string is a `SecretText`: it is the value wherever the adapter uses it, but prints (its
`repr`, which every params error and adapter message quotes) as written in the config, so the secret
itself appears neither in errors nor in logs; pages that show the config show it as written.

The files read are recorded with their state (`ReadSecret`): the runtime watches them beside the config
folder, so a rotated Secret reloads the config and rebuilds the handlers that use it.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from .fields import Problem

MAX_SECRET_BYTES = 64 * 1024

_REFERENCE = re.compile(r"\$\$\{|\$\{(env|file):([^}]*)\}|\$\{")


class SecretText(str):
    """A params string resolved from references: reads as the value, prints as written."""

    written: str

    def __new__(cls, value: str, written: str) -> SecretText:
        text = super().__new__(cls, value)
        text.written = written
        return text

    def __repr__(self) -> str:
        return repr(self.written)

    def __reduce__(self) -> Any:  # pickling and copying keep the mask
        return (SecretText, (str(self), self.written))


class ReadSecret(NamedTuple):
    """A secret file as it was when read: what the watcher compares to notice a rotation."""

    path: str
    state: tuple[object, ...]


def file_state(path: str) -> tuple[object, ...]:
    """Where `path` leads and its size and modification time; ("missing",) when it cannot be seen."""
    try:
        st = os.stat(path)
        return (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    except OSError as e:
        return ("missing", e.errno or 0)


def resolve(
    raw: Any,
    path: str,
    problems: list[Problem],
    read: dict[str, ReadSecret],
    env: Mapping[str, str] | None = None,
) -> Any:
    """`raw` (params as parsed from YAML) with every reference in its strings resolved; problems for the
    ones that cannot be, each at its field path; the files read go into `read`."""
    if isinstance(raw, str):
        return (
            _resolve_text(raw, path, problems, read, os.environ if env is None else env)
            if "${" in raw
            else raw
        )
    if isinstance(raw, Mapping):
        return {k: resolve(v, f"{path}.{k}", problems, read, env) for k, v in raw.items()}
    if isinstance(raw, list):
        return [resolve(v, f"{path}[{i}]", problems, read, env) for i, v in enumerate(raw)]
    return raw


def _resolve_text(
    text: str, path: str, problems: list[Problem], read: dict[str, ReadSecret], env: Mapping[str, str]
) -> str:
    resolved = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal resolved
        whole, source, name = match.group(0), match.group(1), match.group(2)
        if whole == "$${":
            return "${"
        if source is None:
            problems.append((path, "'${' starts no reference: write ${env:NAME}, ${file:/path} or $${"))
            return whole
        resolved = True
        value = _env(name, env) if source == "env" else _file(name, read)
        if isinstance(value, _Unresolved):
            problems.append((path, f"{whole}: {value.reason}"))
            return whole
        return value

    value = _REFERENCE.sub(substitute, text)
    return SecretText(value, text) if resolved else value


class _Unresolved(NamedTuple):
    reason: str


def _env(name: str, env: Mapping[str, str]) -> str | _Unresolved:
    if not name:
        return _Unresolved("name the environment variable")
    value = env.get(name)
    return _Unresolved(f"the environment variable {name} is not set") if value is None else value


def _file(name: str, read: dict[str, ReadSecret]) -> str | _Unresolved:
    if not os.path.isabs(name):
        return _Unresolved("the path must be absolute")
    state = file_state(name)
    try:
        st = os.stat(name)
        if not stat.S_ISREG(st.st_mode):
            return _Unresolved("not a regular file")
        if st.st_size > MAX_SECRET_BYTES:
            return _Unresolved(f"larger than {MAX_SECRET_BYTES} bytes")
        data = Path(name).read_bytes()[: MAX_SECRET_BYTES + 1]
    except OSError as e:
        return _Unresolved(f"cannot be read: {e.strerror or e}")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return _Unresolved("not UTF-8 text")
    read[name] = ReadSecret(name, state)
    return text.removesuffix("\n").removesuffix("\r")
