"""The built-in templates, one module each; `TEMPLATES` maps a template name to its `Template`."""

from __future__ import annotations

from types import MappingProxyType

from . import (
    apikey,
    authorization,
    checknothing,
    kubernetes,
    listentry,
    logentry,
    metric,
    quota,
    reportnothing,
    tracespan,
)
from ._base import Field, Message, Template, Variety, handler_method
from .apikey import ApiKeyInstance
from .authorization import Action, AuthorizationInstance, Subject
from .checknothing import CheckNothingInstance
from .kubernetes import KubernetesInstance
from .listentry import ListEntryInstance
from .logentry import LogEntryInstance
from .metric import MetricInstance
from .quota import QuotaInstance
from .reportnothing import ReportNothingInstance
from .tracespan import TraceSpanInstance

_MODULES = (
    metric,
    logentry,
    tracespan,
    quota,
    listentry,
    checknothing,
    reportnothing,
    authorization,
    apikey,
    kubernetes,
)

#: Template name -> Template, for every built-in template.
TEMPLATES: MappingProxyType[str, Template] = MappingProxyType({m.TEMPLATE.name: m.TEMPLATE for m in _MODULES})

__all__ = [
    "TEMPLATES",
    "Action",
    "ApiKeyInstance",
    "AuthorizationInstance",
    "CheckNothingInstance",
    "Field",
    "KubernetesInstance",
    "ListEntryInstance",
    "LogEntryInstance",
    "Message",
    "MetricInstance",
    "QuotaInstance",
    "ReportNothingInstance",
    "Subject",
    "Template",
    "TraceSpanInstance",
    "Variety",
    "handler_method",
]
