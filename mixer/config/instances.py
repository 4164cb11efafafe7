"""Instances compiled from their params: every field an expression, checked against the template.

`compile_instance` turns an instance's params into an `InstanceBuilder` whose `build(bag)` evaluates the
fields and returns the template's instance dataclass. `build` is generated Python (one call per field,
maps and nested messages inlined), so a request pays for the expressions and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..adapter import InstanceInfo
from ..attribute import AttributeBag, AttributeManifest
from ..attribute.values import ValueType
from ..lang import CompiledExpression, ExpressionError, compile_expression
from ..params import camel
from ..templates import Field, Template
from .fields import type_name

Problem = tuple[str, str]  # (field path, reason)


class ExpressionCache:
    """Compiles each (expression text) once per config against one manifest."""

    def __init__(self, manifest: AttributeManifest) -> None:
        self.manifest = manifest
        self._compiled: dict[str, CompiledExpression | ExpressionError] = {}

    def compile(self, text: str) -> CompiledExpression:
        found = self._compiled.get(text)
        if found is None:
            try:
                found = compile_expression(text, self.manifest)
            except ExpressionError as e:
                found = e
            self._compiled[text] = found
        if isinstance(found, ExpressionError):
            raise found
        return found


def expression_text(raw: Any) -> str | None:
    """A params leaf as expression text: strings as they are, bare numbers and booleans as their text."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float | str):
        return str(raw)
    return None


def compile_typed(
    cache: ExpressionCache,
    raw: Any,
    expected: ValueType | None,
    path: str,
    problems: list[Problem],
    *,
    what: str = "the field",
) -> CompiledExpression | None:
    """`raw` compiled, with a problem recorded when it is not an expression of type `expected` (None: any);
    `what` names the receiver of the value in that problem."""
    text = expression_text(raw)
    if text is None:
        problems.append((path, f"expected an expression (a string), got {type_name(raw)}"))
        return None
    try:
        compiled = cache.compile(text)
    except ExpressionError as e:
        problems.append((path, str(e)))
        return None
    if expected is not None and compiled.type != expected:
        problems.append(
            (path, f"expression {text!r} has type {compiled.type.name}, {what} needs {expected.name}")
        )
        return None
    return compiled


class InstanceBuilder:
    """Builds one instance's dataclass from a bag; `info` is what its handler learns at build time."""

    __slots__ = ("bindings", "build", "fqn", "info", "source", "template")

    def __init__(
        self,
        fqn: str,
        template: Template,
        build: Callable[[AttributeBag], Any],
        types: Mapping[str, Any],
        source: str,
        bindings: tuple[tuple[str, CompiledExpression], ...] = (),
    ) -> None:
        self.fqn = fqn
        self.template = template
        self.build = build
        self.info = InstanceInfo(fqn, template.name, types)
        self.source = source  # the generated Python, for debugging
        self.bindings = bindings  # attribute generators: attribute name -> expression over the output


class _Generator:
    """Writes the source of `build(bag)` with every constant passed in as a global."""

    def __init__(self) -> None:
        self.globals: dict[str, Any] = {}

    def const(self, value: Any) -> str:
        name = f"_c{len(self.globals)}"
        self.globals[name] = value
        return name

    def value(self, compiled: CompiledExpression) -> str:
        if compiled.constant:
            return self.const(compiled.value)
        return f"{self.const(compiled.evaluate)}(bag)"


def compile_instance(
    fqn: str, template: Template, params: Any, cache: ExpressionCache, path: str, problems: list[Problem]
) -> InstanceBuilder | None:
    """An InstanceBuilder for `params`, or None with every problem recorded (paths start at `path`)."""
    gen = _Generator()
    before = len(problems)
    types: dict[str, Any] = {}
    body = _message(gen, template.fields, template.instance, params, path, cache, problems, types, fqn)
    if len(problems) > before:
        return None
    source = f"def build(bag):\n    return {body}\n"
    namespace = dict(gen.globals)
    exec(compile(source, f"<instance {fqn}>", "exec"), namespace)  # our own generated code, no user text
    # Out of its own globals, `build` is no reference cycle (see mixerd.lang.compiler).
    return InstanceBuilder(fqn, template, namespace.pop("build"), types, source)


def _message(
    gen: _Generator,
    fields: tuple[Field, ...],
    cls: type,
    params: Any,
    path: str,
    cache: ExpressionCache,
    problems: list[Problem],
    types: dict[str, Any],
    fqn: str | None,
) -> str:
    """Source of an expression constructing `cls` from the params mapping of its fields."""
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        problems.append((path, f"expected a mapping of field -> expression, got {type_name(params)}"))
        return "None"
    by_name = {spelling: f for f in fields for spelling in f.names}
    args: list[str] = [f"name={gen.const(fqn)}"] if fqn is not None else []
    given: dict[str, str] = {}  # field name -> the spelling used
    for key, raw in params.items():
        field = by_name.get(str(key))
        here = f"{path}.{key}"
        if field is None:
            known = ", ".join(f.json_name or camel(f.name) for f in fields) or "none"
            problems.append((here, f"unknown field (this template's fields: {known})"))
            continue
        if field.name in given:
            problems.append((here, f"field given twice (as {given[field.name]} and {key})"))
            continue
        given[field.name] = str(key)
        args.append(f"{field.name}={_field(gen, field, raw, here, cache, problems, types)}")
    return f"{gen.const(cls)}({', '.join(args)})"


def _field(
    gen: _Generator,
    field: Field,
    raw: Any,
    path: str,
    cache: ExpressionCache,
    problems: list[Problem],
    types: dict[str, Any],
) -> str:
    if field.message is not None:
        nested: dict[str, Any] = {}
        types[field.name] = nested
        return _message(
            gen, field.message.fields, field.message.cls, raw, path, cache, problems, nested, None
        )
    if field.is_map:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            problems.append((path, f"expected a mapping of key -> expression, got {type_name(raw)}"))
            return "None"
        entry_types: dict[str, ValueType] = {}
        types[field.name] = entry_types
        entries = []
        for key, entry in raw.items():
            compiled = compile_typed(cache, entry, field.type, f"{path}[{str(key)!r}]", problems)
            if compiled is not None:
                entry_types[str(key)] = compiled.type
                entries.append(f"{gen.const(str(key))}: {gen.value(compiled)}")
        return "{" + ", ".join(entries) + "}"
    compiled = compile_typed(cache, raw, field.type, path, problems)
    if compiled is None:
        return "None"
    types[field.name] = compiled.type
    return gen.value(compiled)
