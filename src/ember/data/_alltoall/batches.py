"""Conversions between Arrow blocks and the batch formats a ``map_groups`` function sees.

``"default"``/``"numpy"``: a dict of numpy arrays; ``"pandas"``: a DataFrame;
``"pyarrow"`` (or None): the table itself. A function may return any of these.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

BATCH_FORMATS = ("default", "numpy", "pandas", "pyarrow", None)


def check_format(batch_format: str | None) -> None:
    if batch_format not in BATCH_FORMATS:
        raise ValueError(
            f"The given batch format {batch_format!r} isn't allowed (must be one of "
            f"{list(BATCH_FORMATS)})."
        )


def to_batch(table: pa.Table, batch_format: str | None) -> Any:
    if batch_format in ("default", "numpy"):
        return {
            name: table.column(name).to_numpy(zero_copy_only=False)
            for name in table.column_names
        }
    if batch_format == "pandas":
        return table.to_pandas()
    return table


def from_batch(batch: Any) -> pa.Table:
    """The Arrow table of a function's output batch; a TypeError names what came back instead."""
    if isinstance(batch, pa.Table):
        return batch
    if isinstance(batch, pd.DataFrame):
        return pa.Table.from_pandas(batch, preserve_index=False)
    if isinstance(batch, dict):
        columns = {}
        for name, values in batch.items():
            arr = (
                np.asarray(values)
                if not isinstance(values, pa.Array | pa.ChunkedArray)
                else values
            )
            if isinstance(arr, np.ndarray) and arr.ndim > 1:
                columns[name] = pa.array(list(arr))
            else:
                columns[name] = pa.array(arr) if isinstance(arr, np.ndarray) else arr
        return pa.table(columns)
    raise TypeError(
        "A map_groups function must return a dict of arrays, a pandas.DataFrame or a "
        f"pyarrow.Table, got {type(batch).__name__}"
    )
