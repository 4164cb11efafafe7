"""Expression cost: a compiled CEXL rule match against the same logic written by hand, and compile speed.

Usage: python bench/expressions.py
"""

from __future__ import annotations

import argparse
import time

from _common import per_call_us

from mixerd.attribute import BUILTIN_MANIFEST, AttributeBag
from mixerd.lang import EvaluationError, compile_expression

RULE = 'request.headers["x-user"] | "" == "admin" && match(destination.service.host, "*.svc.cluster.local")'


def hand_written(bag: AttributeBag) -> bool:
    """RULE by hand, with the same bag calls (so the same references are recorded)."""
    user = bag.map_get("request.headers", "x-user")
    if user is None:
        user = ""
    if user != "admin":
        return False
    host = bag.get("destination.service.host")
    if host is None:
        raise EvaluationError("lookup failed: 'destination.service.host'")
    return host.endswith(".svc.cluster.local")


def distinct_expressions(n: int) -> list[str]:
    shapes = [
        'request.headers["x-{i}"] | "" == "v{i}" && match(destination.service.host, "*.ns{i}.svc")',
        'source.namespace == "ns{i}" || request.path.startsWith("/api/v{i}")',
        'conditional(request.size > {i}, "big{i}", "small") == request.method | "GET"',
        'response.code >= {i} && response.duration < "{i}ms" && "^/x{i}/.*".matches(request.path)',
    ]
    return [shapes[i % len(shapes)].format(i=i) for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.5, help="time budget of each timed loop")
    args = parser.parse_args()

    compiled = compile_expression(RULE, BUILTIN_MANIFEST)
    evaluate = compiled.evaluate
    values = {
        "request.headers": {"x-user": "admin"},
        "destination.service.host": "reviews.default.svc.cluster.local",
    }
    for label, bag_values in (
        ("match (both sides read)", values),
        ("no match (short-circuit)", {"request.headers": {}}),
    ):
        bag = AttributeBag(bag_values)
        assert evaluate(bag) == hand_written(bag)
        hand_us = per_call_us(lambda b=bag: hand_written(b), seconds=args.seconds)
        comp_us = per_call_us(lambda b=bag: evaluate(b), seconds=args.seconds)
        print(f"{label}")
        print(f"  hand-written Python (baseline)  {hand_us:8.3f} us")
        print(f"  compiled CEXL                   {comp_us:8.3f} us   {comp_us / hand_us:5.2f}x hand-written")

    texts = distinct_expressions(1000)
    start = time.perf_counter()
    for text in texts:
        compile_expression(text, BUILTIN_MANIFEST)
    elapsed = time.perf_counter() - start
    print(
        f"compile 1000 distinct expressions  {elapsed:8.3f} s    ({elapsed * 1000 / len(texts):.3f} ms each)"
    )


if __name__ == "__main__":
    main()
