"""The runtime: routing table, dispatcher and handler lifecycle across config changes."""

from .controller import Runtime
from .dispatcher import RuntimeDispatcher
from .stats import RuntimeCollector, RuntimeStats
from .table import RoutingTable

__all__ = ["RoutingTable", "Runtime", "RuntimeCollector", "RuntimeDispatcher", "RuntimeStats"]
