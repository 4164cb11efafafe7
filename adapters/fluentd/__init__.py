"""fluentd: sends logentry instances to Fluentd over its forward protocol, as Mixer's fluentd adapter did
(MIXER.md 7.3).

Each instance becomes one event (tag = the instance's name, or its `tag` variable; time = its
timestamp; record = its variables and severity), buffered and pushed in batches in the background
through fluent-logger's FluentSender: a Fluentd that is down or slow never slows a Report.
See docs/adapters/fluentd.md.
"""

from __future__ import annotations

from mixerd.adapter import AdapterInfo, hookimpl

from .handler import FluentdHandler, build
from .params import Params

__all__ = ["FluentdHandler", "Params", "build", "mixerd_adapter_info"]


@hookimpl
def mixerd_adapter_info() -> AdapterInfo:
    return AdapterInfo(
        name="fluentd",
        templates=("logentry",),
        params=Params,
        build=build,
        description="Sends log entries to Fluentd over the forward protocol",
    )
