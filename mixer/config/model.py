"""The compiled config: what a valid config folder becomes, and what the routing table is built from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..adapter import AdapterInfo, InstanceInfo
from ..attribute import BUILTIN_MANIFEST, AttributeManifest
from ..lang import CompiledExpression
from .instances import InstanceBuilder
from .loader import FileRead
from .ratelimit_model import RateLimitDomain
from .secrets import ReadSecret

DEFAULT_NAMESPACE = "istio-system"

#: HeaderOperation.Operation (MIXER.md 5.2)
HEADER_OPERATIONS = {"REPLACE": 0, "REMOVE": 1, "APPEND": 2}


@dataclass(frozen=True)
class HandlerConfig:
    fqn: str
    adapter: AdapterInfo
    params: Any
    instances: Mapping[str, InstanceInfo]  # what rules send it, by instance FQN
    key: str  # equal keys: the same adapter, params and instances, so a built handler can be reused
    rate_limits: bool = False  # some ratelimitconfig counts through it (it needs handle_rate_limits)


@dataclass(frozen=True)
class ActionConfig:
    handler: str  # FQN
    instances: tuple[str, ...]  # FQNs
    name: str = ""


@dataclass(frozen=True)
class HeaderOperationConfig:
    name: str  # lower case
    values: tuple[CompiledExpression, ...]
    operation: int  # HEADER_OPERATIONS


@dataclass(frozen=True)
class RuleConfig:
    fqn: str
    namespace: str
    match: CompiledExpression
    actions: tuple[ActionConfig, ...]
    request_header_operations: tuple[HeaderOperationConfig, ...] = ()
    response_header_operations: tuple[HeaderOperationConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class ResourceSource:
    """A resource of the config as written: where it is, and its YAML text (never a resolved value)."""

    kind: str  # as written
    name: str
    namespace: str
    file: str
    document: int
    text: str

    @property
    def fqn(self) -> str:
        return f"{self.name}.{self.kind}.{self.namespace}"


@dataclass(frozen=True)
class ConfigSources:
    """Where a config came from, for people to read (the admin page): its folder, the files read
    with their size and modification time, and each resource as written."""

    folder: str = ""
    files: tuple[FileRead, ...] = ()
    resources: tuple[ResourceSource, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """A valid config, compiled: what the routing table is built from."""

    manifest: AttributeManifest
    handlers: Mapping[str, HandlerConfig]  # only the handlers some rule uses
    instances: Mapping[str, InstanceBuilder]
    rules: tuple[RuleConfig, ...]
    default_namespace: str = DEFAULT_NAMESPACE
    resources_by_kind: Mapping[str, int] = field(default_factory=dict)  # kinds as written
    rate_limit_domains: Mapping[str, RateLimitDomain] = field(default_factory=dict)  # by domain
    #: The secret files handler params referred to (`${file:...}`), as they were when read.
    secret_files: tuple[ReadSecret, ...] = ()
    sources: ConfigSources = field(default_factory=ConfigSources)


EMPTY_SNAPSHOT = Snapshot(BUILTIN_MANIFEST, {}, {}, ())
