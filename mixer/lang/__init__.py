"""CEXL, Mixer's expression language: parse, type-check and compile expressions to Python callables.

compiled = compile_expression('request.headers["x-user"] | "" == "admin"', BUILTIN_MANIFEST)
compiled.evaluate(bag)  # -> True/False, recording what it read in the bag
"""

from .ast import Constant, Expression, Function, Variable
from .checker import check
from .compiler import CompiledExpression, compile_expression
from .errors import EvaluationError, ExpressionError, ParseError, PatternError, TypeCheckError
from .functions import FUNCTIONS
from .parser import parse
from .types import FunctionInfo

__all__ = [
    "FUNCTIONS",
    "CompiledExpression",
    "Constant",
    "EvaluationError",
    "Expression",
    "ExpressionError",
    "Function",
    "FunctionInfo",
    "ParseError",
    "PatternError",
    "TypeCheckError",
    "Variable",
    "check",
    "compile_expression",
    "parse",
]
