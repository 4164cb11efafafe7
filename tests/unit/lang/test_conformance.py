"""CEXL conformance table (tests/data/lang/conformance.yaml), after Mixer's il test table.

One test per case: build an AttributeBag from the case's inputs, compile the expression against the
fixed test manifest (conftest.MANIFEST), then check the single expectation (result, compile_error,
error or compiles) and, when given, the result type and the referenced attributes. The rules each
case encodes are MIXER.md 4.1 and 8.5; the YAML's header documents the format.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from mixerd.attribute import AttributeBag, Condition, Duration, Timestamp, ValueType

TABLE = Path(__file__).resolve().parents[2] / "data" / "lang" / "conformance.yaml"
EXPECTATIONS = ("result", "compile_error", "error", "compiles")
KEYS = {"expr", "attrs", "attrs_raw", "type", "referenced", "kind", "note", *EXPECTATIONS}
KINDS = {"parse": "ParseError", "type": "TypeCheckError", "pattern": "PatternError"}


def _load() -> list[dict[str, Any]]:
    with TABLE.open(encoding="utf-8") as f:
        cases = yaml.safe_load(f)
    assert isinstance(cases, list), f"{TABLE} must hold a YAML list"
    return cases


CASES = _load()


def _slug(index: int, case: Mapping[str, Any]) -> str:
    text = re.sub(r"[^A-Za-z0-9]+", "_", str(case.get("expr", ""))).strip("_")[:40]
    return f"{index:03d}-{text or 'empty'}"


def _lang():
    return importlib.import_module("mixerd.lang")


def _reference_text(ref) -> str:
    prefix = "-" if ref.condition == Condition.ABSENCE else ""
    assert ref.condition in (Condition.ABSENCE, Condition.EXACT), ref
    key = f"[{ref.key}]" if ref.key is not None else ""
    return f"{prefix}{ref.name}{key}"


def _check_result(kind: ValueType, actual: Any, expected: Any, to_value) -> None:
    """`actual` (from evaluate) equals the YAML `expected` read as a value of `kind`."""
    want = to_value(kind, expected)
    if kind is ValueType.BOOL:
        assert isinstance(actual, bool), f"BOOL result is {actual!r}"
        assert actual is want
    elif kind is ValueType.INT64:
        assert isinstance(actual, int) and not isinstance(actual, bool), f"INT64 result is {actual!r}"
        assert actual == want
    elif kind is ValueType.DOUBLE:
        assert isinstance(actual, float), f"DOUBLE result is {actual!r}"
        assert actual == want
    elif kind in (ValueType.STRING, ValueType.DNS_NAME, ValueType.EMAIL_ADDRESS, ValueType.URI):
        assert isinstance(actual, str), f"{kind.name} result is {actual!r}"
        assert actual == want
    elif kind is ValueType.TIMESTAMP:
        assert isinstance(actual, int) and not isinstance(actual, bool), f"TIMESTAMP result is {actual!r}"
        assert int(actual) == int(want), f"{Timestamp(int(actual)).isoformat()} != {expected}"
    elif kind is ValueType.DURATION:
        assert isinstance(actual, int) and not isinstance(actual, bool), f"DURATION result is {actual!r}"
        assert int(actual) == int(want), f"{Duration(int(actual))} != {expected}"
    elif kind is ValueType.IP_ADDRESS:
        # Byte for byte: ip("1.2.3.4") is Go's 16-byte form, written ::ffff:1.2.3.4 in the table.
        assert isinstance(actual, (bytes, bytearray)), f"IP_ADDRESS result is {actual!r}"
        assert bytes(actual) == want, f"{bytes(actual).hex()} != {want.hex()}"
    elif kind is ValueType.STRING_MAP:
        assert isinstance(actual, Mapping), f"STRING_MAP result is {actual!r}"
        assert dict(actual) == want
    else:
        raise AssertionError(f"unexpected result type {kind!r}")


def test_table_shape():
    """The table is big enough and every case is well formed, with exactly one expectation."""
    assert len(CASES) >= 300, f"only {len(CASES)} cases"
    for index, case in enumerate(CASES):
        where = _slug(index, case)
        assert isinstance(case, dict), where
        assert isinstance(case.get("expr"), str), where
        assert set(case) <= KEYS, f"{where}: unknown keys {set(case) - KEYS}"
        present = [k for k in EXPECTATIONS if k in case]
        assert len(present) == 1, f"{where}: expectations {present}"
        if "compiles" in case:
            assert case["compiles"] is True, where
        for key in ("compile_error", "error"):
            if key in case:
                assert isinstance(case[key], str), where
        if "type" in case:
            assert case["type"] in ValueType.__members__, where
        if "kind" in case:
            assert case["kind"] in KINDS and "compile_error" in case, where
        if "referenced" in case:
            assert "compile_error" not in case, where
            assert isinstance(case["referenced"], list), where
            assert len(set(case["referenced"])) == len(case["referenced"]), f"{where}: duplicate references"


def test_table_exprs_unique_per_input():
    """No case is an exact duplicate of another (same expression and inputs)."""
    seen: dict[str, int] = {}
    for index, case in enumerate(CASES):
        key = repr((case.get("expr"), case.get("attrs"), case.get("attrs_raw")))
        assert key not in seen, f"case {index} duplicates case {seen[key]}: {case.get('expr')!r}"
        seen[key] = index


@pytest.mark.parametrize("case", CASES, ids=[_slug(i, c) for i, c in enumerate(CASES)])
def test_case(case, lang_manifest, lang_bag_values, lang_to_value):
    lang = _lang()
    expr = case["expr"]

    if "compile_error" in case:
        with pytest.raises(lang.ExpressionError) as info:
            lang.compile_expression(expr, lang_manifest)
        compile_errors = (lang.ParseError, lang.TypeCheckError, lang.PatternError)
        assert isinstance(info.value, compile_errors), repr(info.value)
        if "kind" in case:
            assert isinstance(info.value, getattr(lang, KINDS[case["kind"]])), repr(info.value)
        assert case["compile_error"] in str(info.value)
        return

    ce = lang.compile_expression(expr, lang_manifest)
    if "type" in case:
        assert ce.type == ValueType[case["type"]]
    if "compiles" in case:
        return

    bag = AttributeBag(lang_bag_values(case.get("attrs"), case.get("attrs_raw")))
    if "error" in case:
        with pytest.raises(lang.EvaluationError) as info:
            ce.evaluate(bag)
        assert case["error"] in str(info.value)
    else:
        actual = ce.evaluate(bag)
        _check_result(ValueType(ce.type), actual, case["result"], lang_to_value)

    if "referenced" in case:
        got = sorted(_reference_text(r) for r in bag.references())
        assert got == sorted(case["referenced"])
