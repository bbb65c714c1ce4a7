"""Matching state rows against the state API's filters (pure; shared by client and server).

A filter is ``(column, predicate, value)``; predicates are ``"="`` and
``"!="`` (as Ray's state API). Several filters mean AND. Strings compare
case-insensitively; a string value given for a bool or int column is
converted first (``"true"``, ``"1"``, ``"False"``...), so filters typed on a
command line match the columns' own types.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

PREDICATES = ("=", "!=")

Filter = tuple[str, str, Any]

_TRUE = ("true", "1")
_FALSE = ("false", "0")


class FilterValueError(ValueError):
    """A filter value that cannot be read as its column's type."""


def as_bool(value: Any) -> bool:
    """``value`` as a bool column reads it (``True``/``true``/``1``, ``False``/``false``/``0``)."""
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise FilterValueError(
        f"{value!r} is not a boolean: use True, true or 1, or False, false or 0."
    )


def _equal(have: Any, want: Any) -> bool:
    if isinstance(have, bool):
        return have == as_bool(want)
    if isinstance(have, str) and isinstance(want, str):
        return have.lower() == want.lower()
    if isinstance(have, (int, float)) and isinstance(want, str):
        try:
            return have == type(have)(want)
        except ValueError as exc:
            raise FilterValueError(
                f"{want!r} is not a number, but the column holds numbers."
            ) from exc
    return bool(have == want)


def matches(row: dict[str, Any], filters: Sequence[Filter]) -> bool:
    """Whether ``row`` passes every filter (a column it lacks never matches)."""
    for key, predicate, value in filters:
        if key not in row:
            return False
        have = row[key]
        if have is None:
            same = value is None or (isinstance(value, str) and value == "")
        else:
            same = _equal(have, value)
        if (predicate == "=") != same:
            return False
    return True


def select(
    rows: Iterable[dict[str, Any]],
    filters: Sequence[Filter],
    limit: int,
    order_by: str = "",
) -> tuple[list[dict[str, Any]], int]:
    """The first ``limit`` rows that match (sorted by ``order_by`` if given, as
    Ray sorts by id), and how many matched in all."""
    if order_by:
        found = list(_matching(rows, filters))
        found.sort(key=lambda r: str(r.get(order_by) or ""))
        return found[:limit], len(found)
    out: list[dict[str, Any]] = []
    matched = 0
    for row in _matching(rows, filters):
        matched += 1
        if len(out) < limit:
            out.append(row)
    return out, matched


def _matching(
    rows: Iterable[dict[str, Any]], filters: Sequence[Filter]
) -> Iterator[dict[str, Any]]:
    if not filters:
        yield from rows
        return
    for row in rows:
        if matches(row, filters):
            yield row
