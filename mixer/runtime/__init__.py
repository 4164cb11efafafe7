"""The runtime: routing table, dispatcher and handler lifecycle across config changes.

The dispatcher (dispatcher.py) puts together one module per step: generation, check, quota, report, with
what they share in calls.py and what they can tell a trace in trace.py."""

from .controller import Runtime
from .dispatcher import RuntimeDispatcher
from .stats import RuntimeCollector, RuntimeStats
from .table import RoutingTable
from .trace import Trace

__all__ = ["RoutingTable", "Runtime", "RuntimeCollector", "RuntimeDispatcher", "RuntimeStats", "Trace"]
