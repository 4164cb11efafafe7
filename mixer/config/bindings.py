"""Attribute bindings of generator instances: attribute name -> expression over the adapter's output.

`$out.<field>` (Mixer's compiled generators) and `output.<field>` (its dynamic form) name a field of
the template's output (MIXER.md 5.3); both are rewritten to the attribute the dispatcher stores that
output under (`<template package>.output.<field>`), outside string literals only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..adapter import Variety
from ..attribute import AttributeManifest
from ..lang import CompiledExpression
from ..templates import Template
from .fields import Problem, type_name
from .instances import ExpressionCache, compile_typed

#: A string, char or raw-string literal (left alone), or an output reference not inside a longer name.
_OUTPUT_REF = re.compile(
    r'("(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`[^`]*`)|(?<![\w.$])(\$out|output)\.(\w*)'
)


def rewrite_outputs(text: str, template: Template) -> tuple[str, list[str]]:
    """`text` with its output references renamed to attributes, and the fields it names that the
    template's output does not have."""
    fields = {f.name for f in template.output}
    unknown: list[str] = []

    def replace(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return m.group(1)
        if m.group(3) not in fields:
            unknown.append(f"{m.group(2)}.{m.group(3)}")
        return template.output_prefix + m.group(3)

    return _OUTPUT_REF.sub(replace, text), unknown


def compile_bindings(
    template: Template, raw: Any, path: str, manifest: AttributeManifest, problems: list[Problem]
) -> tuple[tuple[str, CompiledExpression], ...]:
    """The bindings, each compiled to the type of its target attribute; problems in `problems`."""
    if raw is None or raw == {}:
        return ()
    if template.variety is not Variety.ATTRIBUTE_GENERATOR:
        problems.append(
            (
                path,
                f"only attribute-generator templates take bindings; {template.name!r} is "
                f"{template.variety.name}",
            )
        )
        return ()
    if not isinstance(raw, Mapping):
        problems.append((path, f"expected a mapping of attribute name -> expression, got {type_name(raw)}"))
        return ()
    cache = ExpressionCache(manifest)
    outputs = ", ".join(f.name for f in template.output)
    out = []
    for attribute, text in raw.items():
        here = f"{path}[{str(attribute)!r}]"
        target = manifest.get(str(attribute))
        if target is None:
            problems.append(
                (here, f"unknown attribute {str(attribute)!r}: declare it in an attributemanifest")
            )
            continue
        if not isinstance(text, str):
            problems.append((here, f"expected an expression (a string), got {type_name(text)}"))
            continue
        rewritten, unknown = rewrite_outputs(text, template)
        if unknown:
            problems.append(
                (
                    here,
                    f"{unknown[0]}: template {template.name!r} has no such output (its outputs: {outputs})",
                )
            )
            continue
        found: list[Problem] = []
        compiled = compile_typed(cache, rewritten, target, here, found, what=f"attribute {str(attribute)!r}")
        # name the outputs as written, not by the attribute names they were rewritten to
        problems.extend(
            (p, reason.replace(rewritten, text).replace(template.output_prefix, "$out."))
            for p, reason in found
        )
        if compiled is not None:
            out.append((str(attribute), compiled))
    return tuple(out)
