"""YAML's safe loader made strict and bounded: no key twice in a mapping, no alias bombs, no deep nesting.

YAML builds an alias (`*a`) as a second reference to its anchor's data, so nine lines of nested aliases
("billion laughs") parse quickly into a small graph that stands for 9^9 strings; the blow-up comes
later, when something walks it as a tree (params are read field by field, instances and params are
written out whole to compare configs). A merge key (`<<: *a`) copies its mapping's entries into
each use, so it expands the same way. So every document's node graph is measured before it is built:

- the nodes it stands for when every alias is expanded, beyond those written, count against one
  budget for the whole config read (`AliasBudget`): a budget per document would let many small
  documents add up to a bomb again;
- its nesting, with aliases expanded, is at most `MAX_DEPTH` levels (the code that reads the data
  recurses; Mixer's resources nest about ten levels deep);
- an alias inside its own anchor (recursive data) is refused: no config needs it, and walking it
  would never end.

Measuring costs one pass over the nodes as written (an alias's expansion is counted, not walked).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

#: Nodes aliases may add to a whole config read, beyond those written (a few per use is the norm).
MAX_ALIAS_NODES = 1_000_000
#: Deepest nesting of collections in one document, aliases expanded.
MAX_DEPTH = 100


class YamlLimitError(yaml.MarkedYAMLError):
    """A document refused for its shape (aliases, nesting), not its syntax."""


class AliasBudget:
    """Nodes that aliases may still add across the documents of one config read."""

    def __init__(self, nodes: int = MAX_ALIAS_NODES) -> None:
        self.limit = nodes
        self.left = nodes

    def spend(self, nodes: int) -> None:
        if nodes > self.left:
            raise YamlLimitError(
                problem=f"YAML aliases expand this document by {nodes} nodes; the whole config may "
                f"expand by at most {self.limit} (an alias bomb?)"
            )
        self.left -= nodes


def load_all(text: str, budget: AliasBudget, spans: list[tuple[int, int]] | None = None) -> Iterator[Any]:
    """The documents of `text`, as yaml.safe_load_all gives them but strict and bounded (YAMLError).

    `spans`, when given, gets the (start, end) offsets in `text` of each document's content as it is
    written (its root node: neither the `---` line nor comments around it)."""
    loader = _BoundedLoader(text)
    loader.budget = budget
    loader.spans = spans
    try:
        while loader.check_data():
            yield loader.get_data()
    finally:
        loader.dispose()


def measure(root: yaml.Node, budget: AliasBudget) -> None:
    """Check `root`'s document against the limits (YamlLimitError), spending its alias expansion.

    An alias is the very node its anchor names, so a collection met a second time is an alias use:
    it adds every node it stands for (measured once, at its first use). A scalar alias adds one node
    per use, which the file size bounds already, so scalars are only counted, never remembered.
    """
    if root.__class__ is not _SCALAR:
        walk = _Walk()
        walk(root, 1)
        if walk.extra:
            budget.spend(walk.extra)


class _Walk:
    """One document's measuring walk. (An object rather than a recursive closure, which would be a
    reference cycle left for the garbage collector once per document read.)"""

    __slots__ = ("extra", "measured", "open")

    def __init__(self) -> None:
        self.measured: dict[int, tuple[int, int]] = {}  # collection id -> (nodes, levels), aliases expanded
        self.open: set[int] = set()  # collections being measured: the path from the root
        self.extra = 0

    def __call__(self, node: yaml.Node, depth: int) -> tuple[int, int]:
        if depth > MAX_DEPTH:
            raise _too_deep(node)
        key = id(node)
        known = self.measured.get(key)
        if known is not None:
            if depth - 1 + known[1] > MAX_DEPTH:
                raise _too_deep(node)
            self.extra += known[0]
            return known
        if key in self.open:
            raise YamlLimitError(
                problem="a YAML anchor used inside itself through an alias (recursive data is not allowed)",
                problem_mark=node.start_mark,
            )
        self.open.add(key)
        nodes, levels = 1, 1
        children = node.value if node.__class__ is _SEQUENCE else [n for pair in node.value for n in pair]
        for child in children:
            if child.__class__ is _SCALAR:
                nodes += 1
                levels = 2 if levels < 2 else levels
                continue
            n, h = self(child, depth + 1)
            nodes += n
            levels = h + 1 if levels < h + 1 else levels
        self.open.discard(key)
        self.measured[key] = (nodes, levels)
        return nodes, levels


_SCALAR, _SEQUENCE = yaml.ScalarNode, yaml.SequenceNode


def _too_deep(node: yaml.Node) -> YamlLimitError:
    return YamlLimitError(
        problem=f"YAML nested more than {MAX_DEPTH} levels deep", problem_mark=node.start_mark
    )


_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when installed


class _BoundedLoader(_BaseLoader):
    """YAML's safe loader; each document is measured before it is built, and a mapping key written
    twice is an error (YAML would silently keep the last one)."""

    budget: AliasBudget
    spans: list[tuple[int, int]] | None = None

    def construct_document(self, node: yaml.Node) -> Any:
        measure(node, self.budget)
        if self.spans is not None:
            self.spans.append((node.start_mark.index, node.end_mark.index))
        return super().construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)
            try:
                earlier = seen.setdefault(key, key_node)
            except TypeError:  # an unhashable key; the base class reports it
                continue
            if earlier is not key_node:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} is given twice in one mapping "
                    f"(first on line {earlier.start_mark.line + 1})",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep)  # type: ignore[no-any-return]
