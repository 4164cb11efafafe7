"""The Mixer test client behind `mixerd check` and `mixerd report` (Istio's mixc, re-created).

`attrs` turns the attribute flags into typed values; `calls` builds Check/Report requests, sends them
and summarises the answers.
"""

from .attrs import AttributeFlagError, guess_value, parse_attribute_flag, parse_quotas
from .calls import DedupIds, build_check_request, build_report_request, check_result

__all__ = [
    "AttributeFlagError",
    "DedupIds",
    "build_check_request",
    "build_report_request",
    "check_result",
    "guess_value",
    "parse_attribute_flag",
    "parse_quotas",
]
