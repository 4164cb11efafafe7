"""CEXL type checking against an attribute manifest: Mixer's `ast.EvalType`, its order and its texts.

The order matters because the first problem found is the one reported, as in Mixer: for a method the
target is typed before the arguments are counted, and arguments are typed left to right. Arguments are
numbered from 1 without the target (`$s:endsWith(1) arg 1 (1) ...`); a bad target is a `target
typeError`. Too few arguments is "arity mismatch"; too many is not reported (Mixer's TODO), and the extra
ones are neither checked nor evaluated.

Operators that type-check but that Mixer's code generator has no instruction for (`==` on STRING_MAP, `<`
on BOOL, `+` on DURATION) are not errors here, as in Mixer's checker; `compile_expression` rejects them
with Mixer's "internal compiler error" texts (compiler.unsupported).
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
    template = ANY
    if node.target is not None:
        if not info.instance:
            raise TypeCheckError(f"invoking regular function on instance method: {node.name}", node.pos)
        target = _eval_type(node.target, manifest)
        if info.target_type == ANY:
            template = target  # every ANY argument must then have the target's type
        elif target != info.target_type:
            raise TypeCheckError(
                f"{node} target typeError got {target.name}, expected {info.target_type.name}",
                node.target.pos,
            )
    elif info.instance:
        raise TypeCheckError(f"invoking instance method without an instance: {node.name}", node.pos)
    args, arg_types = node.args, info.arg_types
    if len(args) < len(arg_types):
        raise TypeCheckError(
            f"{node} arity mismatch. Got {len(args)} arg(s), expected {len(arg_types)} arg(s)", node.pos
        )
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
    return template if info.return_type == ANY else info.return_type
