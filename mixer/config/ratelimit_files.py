"""envoyproxy/ratelimit's own config files (the `ratelimit_config` folder), read as they are.

Each `*.yaml` / `*.yml` file of the folder (files.py: which, within which limits) holds one domain,
envoyproxy/ratelimit's format unchanged: `domain` and `descriptors` (ratelimit_reader.py). A domain is
in one file, unless `ratelimit_merge_domain_config` (upstream's MERGE_DOMAIN_CONFIG) lets several files
add top-level descriptors to it. The files' domains are counted by the handler `ratelimit_handler`
names (a memquota or redisquota handler of `--config`), or in this process's memory when it is unset.

Problems name the file by the folder as given plus the file's path in it (`ratelimit/edge.yaml
.descriptors[0].rate_limit.unit: ...`), so they cannot be mistaken for `--config`'s files. The folder
is part of the config: read, validated and reloaded with `--config`, all or nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from ..adapter import AdapterInfo
from ..params import params_to_dict, read_params
from ..settings import Settings
from .errors import ConfigError
from .fields import Problem, read_fields, type_name
from .files import DEFAULT_LIMITS, ReadLimits, config_files
from .loader import Document, read_documents
from .model import HandlerConfig
from .ratelimit_model import RateLimitDomain
from .ratelimit_reader import DescriptorReader, Level
from .ratelimits import RateLimitContext, counting_handler

#: The handler that counts the files' domains when `ratelimit_handler` is unset: memquota with its
#: defaults. (No handler of a config has this FQN: theirs have three parts.)
MEMORY_HANDLER = "ratelimit-config.memquota"
_MEMORY_ADAPTER = "memquota"
_ROOT_FIELDS = ("domain", "descriptors")


@dataclass(frozen=True)
class RateLimitFiles:
    """The `ratelimit_config` folder as read, and the settings that say how its domains are counted."""

    folder: str  # as given
    files: tuple[str, ...]  # every config file found, named as problems name it
    documents: tuple[Document, ...]
    errors: tuple[ConfigError, ...]  # reading them
    handler: str | None = None  # `ratelimit_handler`: a handler of --config; None: in memory
    merge: bool = False  # `ratelimit_merge_domain_config`


def read_ratelimit_files(
    folder: str | Path,
    *,
    handler: str | None = None,
    merge: bool = False,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> RateLimitFiles:
    """Every config file of `folder`, split into documents, and the problems reading them."""
    root = Path(folder)
    given = str(folder)
    if not root.is_dir():  # gone, or not yet mounted: not the same as "no domains"
        problem = ConfigError(given, "the rate limit config folder (ratelimit_config) does not exist")
        return RateLimitFiles(given, (), (), (problem,), handler, merge)
    names = tuple(_name(given, p.relative_to(root).as_posix()) for p in config_files(root))
    documents, errors = read_documents(root, limits)
    renamed = tuple(Document(_name(given, d.file), d.number, d.data) for d in documents)
    errors = [
        ConfigError(_name(given, e.file), e.reason, e.document, e.kind, e.resource, e.path) for e in errors
    ]
    return RateLimitFiles(given, names, renamed, tuple(errors), handler, merge)


def files_of(settings: Settings, limits: ReadLimits) -> RateLimitFiles | None:
    """The `ratelimit_config` folder of `settings` read, or None when the setting is unset."""
    if settings.ratelimit_config is None:
        return None
    return read_ratelimit_files(
        settings.ratelimit_config,
        handler=settings.ratelimit_handler,
        merge=settings.ratelimit_merge_domain_config,
        limits=limits,
    )


def _name(folder: str, rel: str) -> str:
    return PurePath(folder, rel).as_posix()


def compile_ratelimit_files(
    files: RateLimitFiles, ctx: RateLimitContext, default_namespace: str, errors: list[ConfigError]
) -> dict[str, RateLimitDomain]:
    """The files' domains, by name; every problem goes to `errors` (with those from reading)."""
    errors.extend(files.errors)
    handler = _handler(files, ctx, default_namespace, errors)
    by_file: dict[str, list[Document]] = {}
    for document in files.documents:
        by_file.setdefault(document.file, []).append(document)
    unreadable = {e.file for e in files.errors}
    domains: dict[str, _Domain] = {}
    for name in files.files:
        documents = by_file.get(name, [])
        if not documents:
            if name not in unreadable:
                errors.append(ConfigError(name, "missing: domain (the file is empty)", path=".domain"))
            continue
        for extra in documents[1:]:
            reason = "a second YAML document: a file holds one domain (envoyproxy/ratelimit would ignore it)"
            errors.append(ConfigError(name, reason, extra.number))
        _read_file(documents[0], files, ctx, domains, errors)
    out = {}
    for name, domain in domains.items():
        domain.check_replaces()
        for file, problems in domain.problems.items():
            errors.extend(ConfigError(file, reason, path=path) for path, reason in problems)
        if handler is not None and not any(domain.problems.values()):
            out[name] = RateLimitDomain(name, ", ".join(domain.readers), handler, domain.level.table())
    return out


class _Domain:
    """One domain as its file (or files, when merging) add to it."""

    def __init__(self) -> None:
        self.level = Level()
        self.readers: dict[str, DescriptorReader] = {}  # by file
        self.problems: dict[str, list[Problem]] = {}

    def reader(self, file: str, problems: list[Problem]) -> DescriptorReader:
        self.problems[file] = problems
        reader = self.readers[file] = DescriptorReader(problems)
        return reader

    def check_replaces(self) -> None:
        """`replaces` names limits of the domain, from any of its files."""
        names = {n for reader in self.readers.values() for n in reader.names}
        for reader in self.readers.values():
            reader.check_replaces(names)


def _read_file(
    document: Document,
    files: RateLimitFiles,
    ctx: RateLimitContext,
    domains: dict[str, _Domain],
    errors: list[ConfigError],
) -> None:
    file, data = document.file, document.data
    if not isinstance(data, Mapping):
        reason = f"expected a mapping with domain and descriptors, got {type_name(data)}"
        errors.append(ConfigError(file, reason))
        return
    problems: list[Problem] = []
    root = read_fields(data, _ROOT_FIELDS, "", problems)
    name = root.get("domain")
    if name is None or name == "":
        problems.append((root.path("domain"), "missing: name the domain Envoy sends (its filter's `domain`)"))
    elif isinstance(name, bool) or not isinstance(name, str | int):
        problems.append((root.path("domain"), f"expected a string, got {type_name(name)}"))
    else:
        name = str(name)
        earlier = ctx.owners.get(name)
        merging = name in domains and files.merge
        if earlier is not None and not merging:
            hint = " (one file per domain, unless ratelimit_merge_domain_config)" if name in domains else ""
            reason = f"domain {name!r} is also configured by {earlier}{hint}"
            problems.append((root.path("domain"), reason))
        else:
            ctx.owners.setdefault(name, file)
            domain = domains.setdefault(name, _Domain())
            reader = domain.reader(file, problems)
            reader.add_level(domain.level, root.get("descriptors"), root.path("descriptors"), "", file)
            return
    # No domain to add to: the descriptors are still read, so that every problem shows at once.
    DescriptorReader(problems).table(root.get("descriptors"), root.path("descriptors"), "")
    errors.extend(ConfigError(file, reason, path=path) for path, reason in problems)


def _handler(
    files: RateLimitFiles, ctx: RateLimitContext, default_namespace: str, errors: list[ConfigError]
) -> str | None:
    """The FQN of the handler that counts the files' domains (MEMORY_HANDLER by default)."""
    if files.handler is None:
        if _MEMORY_ADAPTER not in ctx.adapters:
            reason = "unset, and memquota, which counts in memory without it, is not installed"
            errors.append(ConfigError("ratelimit_handler", reason))
            return None
        return MEMORY_HANDLER
    problems: list[Problem] = []
    # (a handler invalid in itself gives None with no problem here: its own are reported where it is)
    fqn = counting_handler(files.handler, default_namespace, ctx, "", problems)
    errors.extend(ConfigError(f"ratelimit_handler {files.handler!r}", reason) for _, reason in problems)
    return fqn


def memory_handler(adapters: Mapping[str, AdapterInfo]) -> HandlerConfig:
    """The handler that counts the files' domains when `ratelimit_handler` is unset: memquota, defaults."""
    adapter = adapters[_MEMORY_ADAPTER]
    params: Any = read_params(adapter.params, None)
    key = repr(("ratelimit_config", adapter.name, params_to_dict(params)))
    return HandlerConfig(MEMORY_HANDLER, adapter, params, {}, key, rate_limits=True)
