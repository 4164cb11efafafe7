"""Config problems that name their place: file, document, resource and field path.

`rules/quota.yaml: rule 'rl.rule.istio-system' .match: expected BOOL, got STRING`
`export.yaml (document 1, items[3]): rule 'deny.rule.default' .spec.match: ...` (an item of a list)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConfigError:
    """One problem in a config folder."""

    file: str  # relative to the config folder
    reason: str
    document: int = 0  # 1-based document number in the file; 0 when the whole file is at fault
    kind: str = ""
    resource: str = ""  # the resource's FQN, when it has one
    path: str = ""  # the field path inside the document, e.g. .spec.match
    item: int | None = None  # the index in a list document's `items`

    def __str__(self) -> str:
        where = self.file
        if self.item is not None:
            where += f" (document {self.document}, items[{self.item}])"
            if self.resource:
                where += f": {self.kind} {self.resource!r}"
        elif self.resource:
            where += f": {self.kind} {self.resource!r}"
        elif self.document:
            where += f" (document {self.document})"
        if self.path:
            where += f" {self.path}"
        return f"{where}: {self.reason}"


class ConfigRejected(Exception):
    """A config with problems; nothing of it takes effect. `errors` lists every problem."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        lines = "\n".join(f"  {e}" for e in errors)
        super().__init__(f"config rejected with {len(errors)} problem(s):\n{lines}")
