"""Filter expressions: a string such as ``"a > 1 and b in ('x', 'y')"`` as a pyarrow expression.

The result filters a block with Arrow compute and can be pushed into a Parquet scan.
Supported: comparisons (``== != < <= > >=``, chained), ``and``/``or``/``not``, ``in`` and
``not in`` over a literal list/tuple/set, ``is None``/``is not None``, column names and
literals. Anything else returns None (the caller falls back to evaluating with pandas).
"""

from __future__ import annotations

import ast
import operator
from typing import Any

import pyarrow.dataset as pds

_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


class _Unsupported(Exception):
    pass


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError as exc:
        raise _Unsupported(ast.dump(node)) from exc


def _operand(node: ast.expr) -> Any:
    if isinstance(node, ast.Name):
        return pds.field(node.id)
    return pds.scalar(_literal(node))


def _compare(left: ast.expr, op: ast.cmpop, right: ast.expr) -> Any:
    if isinstance(op, (ast.In, ast.NotIn)):
        values = _literal(right)
        if not isinstance(values, (list, tuple, set)):
            raise _Unsupported("in needs a literal list")
        expr = _operand(left).isin(list(values))
        return ~expr if isinstance(op, ast.NotIn) else expr
    if isinstance(op, (ast.Is, ast.IsNot)):
        if not (isinstance(right, ast.Constant) and right.value is None):
            raise _Unsupported("is needs None")
        expr = _operand(left).is_null()
        return ~expr if isinstance(op, ast.IsNot) else expr
    fn = _COMPARE.get(type(op))
    if fn is None:
        raise _Unsupported(type(op).__name__)
    return fn(_operand(left), _operand(right))


def _convert(node: ast.expr) -> Any:
    if isinstance(node, ast.BoolOp):
        parts = [_convert(v) for v in node.values]
        out = parts[0]
        for p in parts[1:]:
            out = (out & p) if isinstance(node.op, ast.And) else (out | p)
        return out
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return ~_convert(node.operand)
    if isinstance(node, ast.Compare):
        lefts = [node.left, *node.comparators[:-1]]
        parts = [
            _compare(a, op, b)
            for a, op, b in zip(lefts, node.ops, node.comparators, strict=True)
        ]
        out = parts[0]
        for p in parts[1:]:
            out = out & p
        return out
    if isinstance(node, ast.Name):
        return pds.field(node.id)
    raise _Unsupported(type(node).__name__)


def to_arrow_expression(text: str) -> Any | None:
    """The pyarrow.dataset expression for ``text``, or None when it uses other syntax."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
        return _convert(tree.body)
    except (SyntaxError, _Unsupported, TypeError):
        return None
