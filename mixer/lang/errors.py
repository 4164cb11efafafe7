"""The expression language's errors: one base class, one subclass per phase."""

from __future__ import annotations


class ExpressionError(Exception):
    """Any failure of a CEXL expression: parsing, type checking or evaluation."""


class ParseError(ExpressionError):
    """Bad syntax. `position` is the 0-based character offset of the offending token."""

    def __init__(self, message: str, position: int = 0) -> None:
        super().__init__(message)
        self.position = position


class TypeCheckError(ExpressionError):
    """The expression does not type-check against the manifest (Mixer's `EvalType` texts)."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class PatternError(ExpressionError):
    """A constant `matches` pattern that RE2 (Go's regexp) rejects, found when compiling.

    Mixer compiled the pattern on every evaluation and failed each time; a constant pattern fails the
    same way on every request, so mixerd reports it once, at config load, with Go's message.
    """


class EvaluationError(ExpressionError):
    """A runtime failure, with Mixer's texts (`lookup failed: 'a'`, `could not convert x to IP_ADDRESS`)."""
