"""The gRPC front-end (istio.mixer.v1.Mixer), health, reflection and the monitoring HTTP side."""

from .app import READY_PATTERN, ConfigError, RunningServer, StartError, start
from .dispatch import ALLOW, CheckOutcome, Dispatcher, NoRulesDispatcher, QuotaOutcome
from .mixer_api import SERVICE_NAME
from .stats import Stats

__all__ = [
    "ALLOW",
    "READY_PATTERN",
    "SERVICE_NAME",
    "CheckOutcome",
    "ConfigError",
    "Dispatcher",
    "NoRulesDispatcher",
    "QuotaOutcome",
    "RunningServer",
    "StartError",
    "Stats",
    "start",
]
