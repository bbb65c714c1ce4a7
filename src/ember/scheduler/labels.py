"""Whether a node's labels satisfy a label constraint (pure).

A constraint is a list of expressions ``(key, operator, values)``, all of which
must hold (Ray's ``NodeLabelSchedulingStrategy``: ``{"region": In("us")}``):

- ``in``: the node has ``key`` and its value is one of ``values``;
- ``not_in``: the node lacks ``key`` or its value is none of ``values``;
- ``exists``: the node has ``key``; ``does_not_exist``: it has not.

The wire form (``strategy["hard"]``, ``strategy["soft"]``) is a list of
``[key, operator, [values...]]`` lists; :func:`from_wire` checks and converts it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

IN = "in"
NOT_IN = "not_in"
EXISTS = "exists"
DOES_NOT_EXIST = "does_not_exist"
OPERATORS = (IN, NOT_IN, EXISTS, DOES_NOT_EXIST)

#: one expression: ``(key, operator, values)``
Expression = tuple[str, str, tuple[str, ...]]


def holds(expr: Expression, labels: Mapping[str, str]) -> bool:
    """Whether one expression holds for a node with ``labels``."""
    key, op, values = expr
    if op == IN:
        return key in labels and labels[key] in values
    if op == NOT_IN:
        return key not in labels or labels[key] not in values
    if op == EXISTS:
        return key in labels
    if op == DOES_NOT_EXIST:
        return key not in labels
    raise ValueError(f"unknown label operator {op!r}; use one of {OPERATORS}")


def matches(exprs: Iterable[Expression], labels: Mapping[str, str]) -> bool:
    """Whether every expression holds (an empty constraint matches every node)."""
    return all(holds(e, labels) for e in exprs)


def from_wire(raw: object) -> list[Expression]:
    """The expressions of a wire-form constraint (``None`` or ``[]``: no constraint).

    Raises:
        ValueError: ``raw`` is not a list of ``[key, operator, values]``.
    """
    if not raw:
        return []
    if not isinstance(raw, Sequence):
        raise ValueError(f"a label constraint must be a list, got {raw!r}")
    out: list[Expression] = []
    for item in raw:
        if not isinstance(item, Sequence) or len(item) != 3:
            raise ValueError(f"a label expression is [key, operator, values]: {item!r}")
        key, op, values = item
        if not isinstance(key, str) or op not in OPERATORS:
            raise ValueError(f"bad label expression {item!r}")
        if not isinstance(values, Sequence) or not all(
            isinstance(v, str) for v in values
        ):
            raise ValueError(f"label expression values must be strings: {item!r}")
        out.append((key, op, tuple(values)))
    return out


def to_wire(exprs: Iterable[Expression]) -> list[list[object]]:
    """The wire form of ``exprs`` (inverse of :func:`from_wire`)."""
    return [[key, op, list(values)] for key, op, values in exprs]


def describe(exprs: Iterable[Expression]) -> str:
    """A readable form for messages: ``region in (us, eu), gpu exists``."""
    words = {NOT_IN: "not in", DOES_NOT_EXIST: "does not exist"}
    parts = []
    for key, op, values in exprs:
        text = f"{key} {words.get(op, op)}"
        if op in (IN, NOT_IN):
            text += f" ({', '.join(values)})"
        parts.append(text)
    return ", ".join(parts)
