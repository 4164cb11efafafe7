"""The strikes adapter's params: a dataclass whose defaults are the default config."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from mixerd.adapter import Code, Duration, Problem

_SECOND = 1_000_000_000
# Module constants, not calls in the field defaults: Duration is immutable, so sharing one is safe.
_ONE_MINUTE = Duration(60 * _SECOND)
_ONE_SECOND = Duration(_SECOND)


@dataclass
class Params:
    # How many strikes within `window` put an offender in the box.
    max_strikes: int = 5
    # How far back strikes count.
    window: Duration = _ONE_MINUTE
    # The metric dimension that names the offender a reported instance is a strike against.
    dimension: str = "offender"
    # The status a boxed offender's checks fail with (a google.rpc.Code name, or its number).
    status: Code = Code.PERMISSION_DENIED
    # How long the proxy may cache an allowing answer.
    valid_duration: Duration = _ONE_SECOND
    # Offenders that are never boxed.
    exempt: list[str] = field(default_factory=list)

    def check(self) -> Iterator[Problem]:
        """The rules the types cannot say, as (field path, reason) pairs."""
        if self.max_strikes < 1:
            yield ".maxStrikes", f"must be at least 1, got {self.max_strikes}"
        if self.window < _SECOND:
            yield ".window", f"must be at least 1s, got {self.window}"
        if not self.dimension:
            yield ".dimension", "must name the metric dimension that holds the offender"
        if self.status == Code.OK:
            yield ".status", "must be an error code: OK would box nobody"
        if self.valid_duration < 0:
            yield ".validDuration", f"must not be negative, got {self.valid_duration}"
        for i, name in enumerate(self.exempt):
            if not name:
                yield f".exempt[{i}]", "must not be empty"
