"""authorization (CHECK): who (subject) wants to do what (action), for authorization adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._base import Field, Message, Template, Variety


@dataclass(slots=True)
class Subject:
    user: str = ""
    groups: str = ""
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Action:
    namespace: str = ""
    service: str = ""
    method: str = ""
    path: str = ""
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class AuthorizationInstance:
    name: str = ""
    subject: Subject = field(default_factory=Subject)
    action: Action = field(default_factory=Action)


_SUBJECT = Message(
    fields=(Field("user"), Field("groups"), Field("properties", None, is_map=True)),
    cls=Subject,
)
_ACTION = Message(
    fields=(
        Field("namespace"),
        Field("service"),
        Field("method"),
        Field("path"),
        Field("properties", None, is_map=True),
    ),
    cls=Action,
)

TEMPLATE = Template(
    name="authorization",
    variety=Variety.CHECK,
    fields=(Field("subject", message=_SUBJECT), Field("action", message=_ACTION)),
    instance=AuthorizationInstance,
    description="A subject (user, groups, properties) and the action it attempts on a service.",
)
