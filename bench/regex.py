"""`.matches()` on RE2 (mixerd.regex) against Python's backtracking `re`, the engine it replaced.

Ordinary patterns: the cost of one compiled rule match, against the same rule with Python's `re` as
mixerd ran it before (the baseline). Hostile ones: one search each, where `re` backtracks (its time
grows exponentially with `--nested` for `^(a+)+$`, so keep that small).

Usage: python bench/regex.py [--nested 24]
"""

from __future__ import annotations

import argparse
import re
import time

from _common import per_call_us

from mixerd.attribute import BUILTIN_MANIFEST, AttributeBag
from mixerd.lang import compile_expression
from mixerd.regex import compile_regex

ORDINARY = [
    ("constant pattern", '"^/api/v[0-9]+/users/[^/]+$".matches(request.path)'),
    ("pattern from an attribute (cached)", 'request.headers["x-re"].matches(request.path)'),
]
PATTERN = "^/api/v[0-9]+/users/[^/]+$"
PATH = "/api/v1/users/12345"


def _once(search, text: str) -> float:
    start = time.perf_counter()
    search(text)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.5, help="time budget of each timed loop")
    parser.add_argument("--nested", type=int, default=24, help="length of the ^(a+)+$ input for re")
    args = parser.parse_args()

    bag = AttributeBag({"request.path": PATH, "request.headers": {"x-re": PATTERN}})
    constant_re = re.compile(PATTERN)
    before = {  # the same rules as mixerd ran them before RE2: the same bag calls, Python's re
        "constant pattern": lambda b: constant_re.search(b.get("request.path")) is not None,
        "pattern from an attribute (cached)": lambda b: (
            re.search(b.map_get("request.headers", "x-re"), b.get("request.path")) is not None
        ),
    }
    for label, text in ORDINARY:
        compiled = compile_expression(text, BUILTIN_MANIFEST).evaluate
        assert compiled(bag) is before[label](bag) is True
        base_us = per_call_us(lambda f=before[label]: f(bag), seconds=args.seconds)
        ours_us = per_call_us(lambda f=compiled: f(bag), seconds=args.seconds)
        print(label)
        print(f"  with Python re (before, baseline)  {base_us:8.3f} us")
        print(f"  compiled rule on RE2               {ours_us:8.3f} us   (+{ours_us - base_us:.3f} us)")

    hostile = [
        (f"^(a+)+$ on {args.nested} a's and '!'", "^(a+)+$", "a" * args.nested + "!"),
        ("^(a+)+$ on 40 a's and '!'", "^(a+)+$", "a" * 40 + "!"),
        (".*foo.*bar on 60 KB", ".*foo.*bar", "foo" + "x" * 60_000),
        ("(x+x+)+y on 5000 x's", "(x+x+)+y", "x" * 5000),
    ]
    print("hostile input, one search")
    for label, pattern, text in hostile:
        ours = _once(compile_regex(pattern).search, text)
        if label.startswith("^(a+)+$ on 40") or label.startswith("(x+x+)+y"):
            theirs = "(not run: years)"
        else:
            theirs = f"{_once(re.compile(pattern).search, text) * 1e3:10.1f} ms"
        print(f"  {label:32} re {theirs:>18}   RE2 {ours * 1e3:8.3f} ms")


if __name__ == "__main__":
    main()
