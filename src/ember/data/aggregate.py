"""ember.data.aggregate: the aggregation functions of ``Dataset.aggregate`` and ``GroupedData`` (Ray's names).

An aggregation runs as ``init(key)`` -> ``accumulate_block(acc, block)`` per
block of rows (a ``pyarrow.Table``) -> ``merge(acc, acc)`` across blocks ->
``finalize(acc)``. The built-in ones (Count, Sum, ...) are ``AggregateFnV2``s:
they say how to aggregate one block, how to combine two partial results and how
to finish, and follow Ray's null rules: with ``ignore_nulls=True`` nulls are
skipped and an all-null group gives None; with ``ignore_nulls=False`` one null
makes the result None.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "AbsMax",
    "AggregateFn",
    "AggregateFnV2",
    "Count",
    "Max",
    "Mean",
    "Min",
    "Quantile",
    "Std",
    "Sum",
    "Unique",
]


def _is_null(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(isinstance(value, float) and math.isnan(value))
    except TypeError:
        return False


class AggregateFn:
    """A user-defined aggregation from its four steps (Ray's ``AggregateFn``).

    ``init(key)`` makes an empty accumulator for a group (``key`` is the group's
    key value, a tuple for several key columns, None without a key);
    exactly one of ``accumulate_row(acc, row_dict)`` or
    ``accumulate_block(acc, block)`` folds rows in; ``merge(a, b)`` joins two
    accumulators; ``finalize(acc)`` (identity by default) gives the value stored
    under ``name`` in the output.
    """

    def __init__(
        self,
        init: Callable[[Any], Any],
        merge: Callable[[Any, Any], Any],
        name: str,
        accumulate_row: Callable[[Any, dict[str, Any]], Any] | None = None,
        accumulate_block: Callable[[Any, pa.Table], Any] | None = None,
        finalize: Callable[[Any], Any] | None = None,
    ) -> None:
        if (accumulate_row is None) == (accumulate_block is None):
            raise ValueError(
                "Exactly one of accumulate_row or accumulate_block must be provided."
            )
        if not isinstance(name, str):
            raise TypeError("`name` must be provided.")
        if accumulate_block is None:
            row_fn = accumulate_row
            assert row_fn is not None

            def accumulate_block(acc: Any, block: pa.Table) -> Any:
                for row in block.to_pylist():
                    acc = row_fn(acc, row)
                return acc

        self.name = name
        self.init = init
        self.merge = merge
        self.accumulate_block = accumulate_block
        self.finalize: Callable[[Any], Any] = (
            finalize if finalize is not None else _identity
        )

    def _validate(self, schema: pa.Schema | None) -> None:
        """Raise if this aggregation cannot run over ``schema`` (nothing to check by default)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _identity(acc: Any) -> Any:
    return acc


class AggregateFnV2(AggregateFn, abc.ABC):
    """An aggregation defined per block (Ray's ``AggregateFnV2``): subclasses give
    ``aggregate_block(block)``, ``combine(a, b)`` and optionally ``finalize(acc)``.

    Null handling is added around them: an empty accumulator (``ignore_nulls``)
    or a poisoned one (not ``ignore_nulls``) is None.
    """

    def __init__(
        self,
        name: str,
        zero_factory: Callable[[], Any],
        *,
        on: str | None,
        ignore_nulls: bool,
    ) -> None:
        if not name:
            raise ValueError(
                f"Non-empty string has to be provided as name (got {name})"
            )
        self._target_col_name = on
        self._ignore_nulls = ignore_nulls
        self._zero_factory = zero_factory
        head, sep, _ = name.partition("(")
        self._agg_name = head if sep else name
        # AggregateFn's ``finalize`` attribute becomes the null-safe step; keep the subclass's own
        self._finalize_value = self.finalize
        super().__init__(
            init=self._empty,
            merge=self._merge,
            name=name,
            accumulate_block=self._accumulate,
            finalize=self._finish,
        )

    def get_target_column(self) -> str | None:
        return self._target_col_name

    def get_agg_name(self) -> str:
        """The aggregation's kind, e.g. ``"sum"`` for ``"sum(x)"``."""
        return self._agg_name

    @abc.abstractmethod
    def aggregate_block(self, block: pa.Table) -> Any:
        """The partial result of one block."""

    @abc.abstractmethod
    def combine(self, current_accumulator: Any, new: Any) -> Any:
        """Two partial results as one."""

    def finalize(self, accumulator: Any) -> Any:
        return accumulator

    def _validate(self, schema: pa.Schema | None) -> None:
        on = self._target_col_name
        if on is not None and schema is not None and on not in schema.names:
            raise ValueError(
                f"You specified the column '{on}', but there's no such column in the "
                f"dataset. The dataset has columns: {schema.names}"
            )

    def _column(self, block: pa.Table) -> pa.ChunkedArray:
        assert self._target_col_name is not None
        return block.column(self._target_col_name)

    # the null-safe protocol around the subclass's three steps
    def _empty(self, key: Any) -> Any:
        return None if self._ignore_nulls else self._zero_factory()

    def _merge(self, a: Any, b: Any) -> Any:
        if self._ignore_nulls:
            if _is_null(a):
                return b
            if _is_null(b):
                return a
        elif _is_null(a) or _is_null(b):
            return None
        return self.combine(a, b)

    def _accumulate(self, acc: Any, block: pa.Table) -> Any:
        part = self.aggregate_block(block)
        if _is_null(part):
            part = None
        return self._merge(acc, part)

    def _finish(self, acc: Any) -> Any:
        return None if _is_null(acc) else self._finalize_value(acc)


class Count(AggregateFnV2):
    """The number of rows (``on=None``) or of values in ``on`` (non-null ones with ``ignore_nulls``)."""

    def __init__(
        self,
        on: str | None = None,
        ignore_nulls: bool = False,
        alias_name: str | None = None,
    ) -> None:
        super().__init__(
            alias_name or f"count({on or ''})",
            lambda: 0,
            on=on,
            ignore_nulls=ignore_nulls,
        )

    def aggregate_block(self, block: pa.Table) -> int:
        if self._target_col_name is None or not self._ignore_nulls:
            return int(block.num_rows)
        col = self._column(block)
        return int(len(col) - col.null_count)

    def combine(self, current_accumulator: Any, new: Any) -> Any:
        return current_accumulator + new

    def _empty(self, key: Any) -> Any:
        return 0  # a count is never null, even of nothing


class Sum(AggregateFnV2):
    """The sum of ``on``."""

    def __init__(
        self,
        on: str | None = None,
        ignore_nulls: bool = True,
        alias_name: str | None = None,
    ) -> None:
        super().__init__(
            alias_name or f"sum({on})", lambda: 0, on=on, ignore_nulls=ignore_nulls
        )

    def aggregate_block(self, block: pa.Table) -> Any:
        return pc.sum(
            self._column(block), skip_nulls=self._ignore_nulls, min_count=1
        ).as_py()

    def combine(self, current_accumulator: Any, new: Any) -> Any:
        return current_accumulator + new


class Min(AggregateFnV2):
    """The smallest value of ``on``."""

    def __init__(
        self,
        on: str | None = None,
        ignore_nulls: bool = True,
        alias_name: str | None = None,
        zero_factory: Callable[[], Any] = lambda: float("+inf"),
    ) -> None:
        super().__init__(
            alias_name or f"min({on})", zero_factory, on=on, ignore_nulls=ignore_nulls
        )

    def aggregate_block(self, block: pa.Table) -> Any:
        return pc.min(
            self._column(block), skip_nulls=self._ignore_nulls, min_count=1
        ).as_py()

    def combine(self, current_accumulator: Any, new: Any) -> Any:
        return min(current_accumulator, new)


class Max(AggregateFnV2):
    """The largest value of ``on``."""

    def __init__(
        self,
        on: str | None = None,
        ignore_nulls: bool = True,
        alias_name: str | None = None,
        zero_factory: Callable[[], Any] = lambda: float("-inf"),
    ) -> None:
        super().__init__(
            alias_name or f"max({on})", zero_factory, on=on, ignore_nulls=ignore_nulls
        )

    def aggregate_block(self, block: pa.Table) -> Any:
        return pc.max(
            self._column(block), skip_nulls=self._ignore_nulls, min_count=1
        ).as_py()

    def combine(self, current_accumulator: Any, new: Any) -> Any:
        return max(current_accumulator, new)


class AbsMax(AggregateFnV2):
    """The largest absolute value of ``on``."""

    def __init__(
        self,
        on: str | None = None,
        ignore_nulls: bool = True,
        alias_name: str | None = None,
        zero_factory: Callable[[], Any] = lambda: 0,
    ) -> None:
        if on is None or not isinstance(on, str):
            raise ValueError(f"Column to aggregate on has to be provided (got {on})")
        super().__init__(
            alias_name or f"abs_max({on})",
            zero_factory,
            on=on,
            ignore_nulls=ignore_nulls,
        )

    def aggregate_block(self, block: pa.Table) -> Any:
        col = pc.abs(self._column(block))
        return pc.max(col, skip_nulls=self._ignore_nulls, min_count=1).as_py()

    def combine(self, current_accumulator: Any, new: Any) -> Any:
        return max(current_accumulator, new)


class Mean(AggregateFnV2):
    """The mean of ``on`` (a float)."""

    def __init__(
        self,
        on: str | None = None,
        ignore_nulls: bool = True,
        alias_name: str | None = None,
    ) -> None:
        super().__init__(
            alias_name or f"mean({on})",
            lambda: [0, 0],
            on=on,
            ignore_nulls=ignore_nulls,
        )

    def aggregate_block(self, block: pa.Table) -> Any:
        col = self._column(block)
        total = pc.sum(col, skip_nulls=self._ignore_nulls, min_count=1).as_py()
        if total is None:
            return None
        count = len(col) - col.null_count
        return [total, count] if count else None

    def combine(self, current_accumulator: Any, new: Any) -> Any:
        return [current_accumulator[0] + new[0], current_accumulator[1] + new[1]]

    def finalize(self, accumulator: Any) -> Any:
        total, count = accumulator
        return None if count == 0 else total / count


class Std(AggregateFnV2):
    """The standard deviation of ``on`` with ``ddof`` (NaN when there are at most ``ddof`` values)."""

    def __init__(
        self,
        on: str | None = None,
        ddof: int = 1,
        ignore_nulls: bool = True,
        alias_name: str | None = None,
    ) -> None:
        super().__init__(
            alias_name or f"std({on})",
            lambda: [0, 0.0, 0],
            on=on,
            ignore_nulls=ignore_nulls,
        )
        self._ddof = ddof

    def aggregate_block(self, block: pa.Table) -> Any:
        col = self._column(block)
        if col.null_count and not self._ignore_nulls:
            return None
        values = pc.drop_null(col).to_numpy(zero_copy_only=False).astype(np.float64)
        if len(values) == 0:
            return None
        mean = float(values.mean())
        return [float(((values - mean) ** 2).sum()), mean, len(values)]

    def combine(self, current_accumulator: Any, new: Any) -> Any:
        m2_a, mean_a, n_a = current_accumulator
        m2_b, mean_b, n_b = new
        n = n_a + n_b
        if n == 0:
            return [0.0, 0.0, 0]
        delta = mean_b - mean_a
        mean = (mean_a * n_a + mean_b * n_b) / n
        return [m2_a + m2_b + delta * delta * n_a * n_b / n, mean, n]

    def finalize(self, accumulator: Any) -> Any:
        m2, _, n = accumulator
        if n - self._ddof <= 0:
            return float("nan")
        return math.sqrt(m2 / (n - self._ddof))


class Quantile(AggregateFnV2):
    """The ``q``-quantile of ``on``, interpolated linearly between the nearest values."""

    def __init__(
        self,
        on: str | None = None,
        q: float = 0.5,
        ignore_nulls: bool = True,
        alias_name: str | None = None,
    ) -> None:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"q must be within [0, 1], got {q}")
        super().__init__(
            alias_name or f"quantile({on})", list, on=on, ignore_nulls=ignore_nulls
        )
        self._q = q

    def aggregate_block(self, block: pa.Table) -> Any:
        col = self._column(block)
        if col.null_count and not self._ignore_nulls:
            return None
        values = pc.drop_null(col).to_pylist()
        return values or None

    def combine(self, current_accumulator: Any, new: Any) -> Any:
        return [*current_accumulator, *new]

    def finalize(self, accumulator: Any) -> Any:
        if not accumulator:
            return None
        return float(np.quantile(np.asarray(accumulator, dtype=np.float64), self._q))


class Unique(AggregateFnV2):
    """The distinct values of ``on`` as a list, in order of first appearance (None included unless ``ignore_nulls``)."""

    def __init__(
        self,
        on: str | None = None,
        ignore_nulls: bool = False,
        alias_name: str | None = None,
        encode_lists: bool | None = None,
    ) -> None:
        if encode_lists:
            raise NotImplementedError(
                "Unique(encode_lists=True) is not supported by ember"
            )
        super().__init__(
            alias_name or f"unique({on})", dict, on=on, ignore_nulls=ignore_nulls
        )

    def aggregate_block(self, block: pa.Table) -> Any:
        col = self._column(block)
        if self._ignore_nulls:
            col = pc.drop_null(col)
        return dict.fromkeys(pc.unique(col).to_pylist())

    def combine(self, current_accumulator: Any, new: Any) -> Any:
        merged = dict(current_accumulator)
        merged.update(new)
        return merged

    def _merge(self, a: Any, b: Any) -> Any:
        # a null value is a member here, not a poison: merge the sets as they are
        if a is None:
            return b
        if b is None:
            return a
        return self.combine(a, b)

    def finalize(self, accumulator: Any) -> Any:
        return list(accumulator)

    def _empty(self, key: Any) -> Any:
        return {}
