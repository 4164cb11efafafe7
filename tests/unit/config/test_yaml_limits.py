"""YAML documents are measured before they are built: alias bombs (aliases and merge keys), recursive
aliases and deep nesting are config errors with file and reason; ordinary anchors load as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixerd.config import read_documents
from mixerd.config.loader import split_documents
from mixerd.config.yaml_limits import MAX_ALIAS_NODES, MAX_DEPTH, AliasBudget

# Without the limits these would run out of memory or never end: fail in seconds if they come back.
pytestmark = pytest.mark.timeout(20)

#: The classic "billion laughs": nine levels of nine aliases, 9^9 strings from under a kilobyte.
BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def problems(text: str) -> list[str]:
    errors: list = []
    split_documents("f.yaml", text, errors)
    return [str(e) for e in errors]


def test_the_billion_laughs_is_refused_with_file_and_reason() -> None:
    # expanded, `i` alone is 1 + 9 * (1 + 9 * (...)) = 435848050 nodes; 28 nodes are written
    assert problems(BILLION_LAUGHS) == [
        "f.yaml (document 1): YAML aliases expand this document by 490329036 nodes; the whole config "
        f"may expand by at most {MAX_ALIAS_NODES} (an alias bomb?)"
    ]


def test_a_merge_key_bomb_is_refused() -> None:
    # `<<` copies a mapping's entries into each use, so merged mappings multiply like aliases
    levels = ["l0: &l0 {k0: v, k1: v, k2: v, k3: v, k4: v, k5: v, k6: v, k7: v, k8: v, k9: v}"]
    for n in range(1, 9):
        merges = ", ".join([f"*l{n - 1}"] * 10)
        levels.append(f"l{n}: &l{n} {{<<: [{merges}], own{n}: v}}")
    [problem] = problems("\n".join(levels) + "\n")
    assert problem.startswith("f.yaml (document 1): YAML aliases expand this document by ")
    assert problem.endswith("(an alias bomb?)")


def test_the_alias_budget_is_shared_by_every_document_of_a_config(tmp_path: Path) -> None:
    # each document expands by 9^5 + ... nodes, well under the budget alone; together they exceed it
    five_levels = "\n".join(BILLION_LAUGHS.splitlines()[:6]) + "\n"
    (tmp_path / "many.yaml").write_text("---\n".join([five_levels] * 30))
    documents, errors = read_documents(tmp_path)
    assert 0 < len(documents) < 30
    assert len(errors) == 30 - len(documents)
    assert all("may expand by at most" in str(e) for e in errors)


def test_anchors_and_merge_keys_a_config_uses_still_load() -> None:
    metric = "- {name: m%d, dimensions: *dims, base: {<<: *dims, extra: 'x'}}\n"
    text = (
        "dims: &dims {source: source.workload.name | 'unknown', code: response.code | 200}\n"
        "metrics:\n" + "".join(metric % i for i in range(50))
    )
    errors: list = []
    [doc] = split_documents("f.yaml", text, errors)
    assert errors == []
    assert doc.data["metrics"][49]["dimensions"]["code"] == "response.code | 200"
    assert doc.data["metrics"][0]["base"]["extra"] == "x"


def test_an_alias_inside_its_own_anchor_is_refused() -> None:
    assert problems("a: &loop [1, 2, *loop]\n") == [
        "f.yaml (document 1): a YAML anchor used inside itself through an alias (recursive data is not "
        "allowed) (line 1 column 4)"
    ]


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    ok = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)  # the document's top mapping is a level too
    assert problems(f"a: {ok}\n") == []
    too_deep = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert problems(f"a: {too_deep}\n") == [
        f"f.yaml (document 1): YAML nested more than {MAX_DEPTH} levels deep (line 1 column {MAX_DEPTH + 3})"
    ]


def test_nesting_through_aliases_counts_too() -> None:
    # each anchor is 10 levels; nesting them through aliases reaches the limit without writing it
    lines = ["l0: &l0 " + "[" * 10 + "]" * 10]
    lines += [f"l{n}: &l{n} " + "[" * 9 + f"*l{n - 1}" + "]" * 9 for n in range(1, 12)]
    [problem] = problems("\n".join(lines) + "\n")
    assert f"YAML nested more than {MAX_DEPTH} levels deep" in problem


def test_a_budget_is_spent_across_calls() -> None:
    budget = AliasBudget(nodes=10)
    errors: list = []
    split_documents("a.yaml", "a: &a [1, 2, 3]\nb: [*a, *a]\n", errors, budget)  # expands by 8
    assert (errors, budget.left) == ([], 2)
    split_documents("b.yaml", "a: &a [1, 2, 3]\nb: [*a]\n", errors, budget)  # by 4 more
    assert [str(e) for e in errors] == [
        "b.yaml (document 1): YAML aliases expand this document by 4 nodes; the whole config may expand "
        "by at most 10 (an alias bomb?)"
    ]
