"""CEXL type checking against an attribute manifest (Mixer's `ast.EvalType`, with its quirks).

Too few arguments is "arity mismatch"; too many is not reported (Mixer's TODO), and the extra ones are
neither checked nor evaluated. Errors Mixer's compiler (not its checker) raises are raised here too, so
`check` accepts exactly what `compile_expression` accepts: `==` on STRING_MAP, `<` or `+` on other types.
"""

from __future__ import annotations

from collections.abc import Mapping

from mixerd.attribute.values import ValueType

from .ast import Constant, Expression, Function, Variable
from .errors import TypeCheckError
from .functions import FUNCTIONS
from .parser import parse
from .types import ANY


def check(expr: str | Expression, manifest: Mapping[str, ValueType]) -> ValueType:
    """The type of `expr` (text or tree) given attribute types; TypeCheckError if it does not check."""
    tree = parse(expr) if isinstance(expr, str) else expr
    return _eval_type(tree, manifest)


def _eval_type(node: Expression, manifest: Mapping[str, ValueType]) -> ValueType:
    if isinstance(node, Constant):
        return node.type
    if isinstance(node, Variable):
        vtype = manifest.get(node.name)
        if vtype is None:
            raise TypeCheckError(f"unknown attribute {node.name}", node.pos)
        return vtype
    if not isinstance(node, Function):
        raise TypeCheckError(f"unexpected expression {node!r}")
    info = FUNCTIONS.get(node.name)
    if info is None:
        raise TypeCheckError(f"unknown function: {node.name}", node.pos)
    args = node.args
    arg_types = info.arg_types
    if info.instance:
        if node.target is None:
            raise TypeCheckError(f"invoking instance method without an instance: {node.name}", node.pos)
        args = (node.target, *args)
        arg_types = (info.target_type, *arg_types)
    elif node.target is not None:
        raise TypeCheckError(f"invoking regular function on instance method: {node.name}", node.pos)
    if len(args) < len(arg_types):
        raise TypeCheckError(
            f"{node} arity mismatch. Got {len(args)} arg(s), expected {len(arg_types)} arg(s)", node.pos
        )
    template = ANY
    for idx, expected in enumerate(arg_types):
        arg = args[idx]
        got = _eval_type(arg, manifest)
        if expected == ANY:
            if template == ANY:
                template = got
                continue
            expected = template
        if got != expected:
            raise TypeCheckError(
                f"{node} arg {idx + 1} ({arg}) typeError got {got.name}, expected {expected.name}", arg.pos
            )
    if info.allowed is not None and template not in info.allowed:
        raise TypeCheckError(f"{node}: {node.name} is not supported for type {template.name}", node.pos)
    return template if info.return_type == ANY else info.return_type
