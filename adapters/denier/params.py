"""denier params (Mixer's `adapter.denier.config.Params`): the status every check answers, and how long
the proxy may cache that answer.

`status` is a google.rpc.Status written as protobuf JSON. Its `details` are `google.protobuf.Any`
values; the one type mixerd understands is istio.policy.v1beta1.DirectHttpResponse, which tells the
proxy to answer the denied request itself (MIXER.md 8.3).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mixerd.adapter import Code, DirectResponse, Duration, HttpStatusCode, Problem

DIRECT_HTTP_RESPONSE = "type.googleapis.com/istio.policy.v1beta1.DirectHttpResponse"

_DEFAULT_VALID_DURATION = Duration(5 * 1_000_000_000)
_HTTP_FIELDS = ("code", "body", "headers")


@dataclass
class Status:
    """google.rpc.Status: `code` (a google.rpc.Code number), `message`, `details` (Any values)."""

    code: int = int(Code.FAILED_PRECONDITION)
    message: str = ""
    details: list[Any] = field(default_factory=list)

    def check(self) -> Iterator[Problem]:
        if not Code.OK <= self.code <= Code.UNAUTHENTICATED:
            yield ".code", f"expected a google.rpc.Code from 0 to 16, got {self.code}"
        for i, detail in enumerate(self.details):
            _, problems = read_detail(detail)
            for sub, reason in problems:
                yield f".details[{i}]{sub}", reason

    def direct_response(self) -> DirectResponse | None:
        """The first DirectHttpResponse among the details (the proxy uses only one), or None."""
        for detail in self.details:
            response, _ = read_detail(detail)
            if response is not None:
                return response
        return None


@dataclass
class Params:
    status: Status = field(default_factory=Status)
    valid_duration: Duration = _DEFAULT_VALID_DURATION
    valid_use_count: int = 1000

    def check(self) -> Iterator[Problem]:
        if self.valid_duration < 0:
            yield ".validDuration", f"must not be negative, got {self.valid_duration}"


def read_detail(detail: Any) -> tuple[DirectResponse | None, list[Problem]]:
    """One protobuf-JSON Any detail as a DirectResponse, with the problems found (paths relative to it)."""
    if not isinstance(detail, Mapping):
        return None, [("", f"expected a mapping with an '@type' (a google.protobuf.Any), got {detail!r}")]
    kind = detail.get("@type")
    if kind is None:
        return None, [("", "a detail needs an '@type' (a google.protobuf.Any)")]
    if kind != DIRECT_HTTP_RESPONSE:
        return None, [("['@type']", f"unknown detail type {kind!r} (known: {DIRECT_HTTP_RESPONSE})")]
    problems: list[Problem] = []
    for key in detail:
        if key != "@type" and key not in _HTTP_FIELDS:
            problems.append((f".{key}", f"unknown field (known: {', '.join(_HTTP_FIELDS)})"))
    code = _http_code(detail.get("code", 0), problems)
    body = _text(detail.get("body", ""), ".body", problems)
    headers: dict[str, str] = {}
    raw_headers = detail.get("headers") or {}
    if isinstance(raw_headers, Mapping):
        for name, value in raw_headers.items():
            headers[str(name)] = _text(value, f".headers[{str(name)!r}]", problems)
    else:
        problems.append((".headers", f"expected a mapping of header name to value, got {raw_headers!r}"))
    if problems:
        return None, problems
    return DirectResponse(code=code, body=body, headers=headers), []


def _http_code(raw: Any, problems: list[Problem]) -> int:
    """An HttpStatusCode as protobuf JSON writes it: its name (`Forbidden`) or its number (403).

    0 (`Empty`) means "derive the code from the deny status" (PERMISSION_DENIED -> 403, ...).
    """
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    if isinstance(raw, str) and raw in HttpStatusCode.DESCRIPTOR.values_by_name:
        return HttpStatusCode.Value(raw)
    if isinstance(raw, int) and not isinstance(raw, bool) and (raw == 0 or 100 <= raw <= 599):
        return raw
    expected = "an HTTP status code (a number from 100 to 599, or a name such as Forbidden)"
    problems.append((".code", f"expected {expected}, got {raw!r}"))
    return 0


def _text(raw: Any, path: str, problems: list[Problem]) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return str(raw)  # YAML reads `Retry-After: 30` as a number
    problems.append((path, f"expected a string, got {raw!r}"))
    return ""
