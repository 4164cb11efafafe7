"""noop params: none (Mixer's noop took google.protobuf.Empty)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Params:
    """No fields: any key in a noop handler's params is reported as unknown."""
