"""ember.data: streaming datasets of Arrow blocks (Ray Data's API)."""

from __future__ import annotations

from ember.data.compute import ActorPoolStrategy, TaskPoolStrategy
from ember.data.context import DataContext, ExecutionOptions, ExecutionResources
from ember.data.dataset import Dataset
from ember.data.iterator import DataIterator
from ember.data.read_api import (
    from_arrow,
    from_arrow_refs,
    from_blocks,
    from_items,
    from_numpy,
    from_numpy_refs,
    from_pandas,
    from_pandas_refs,
    range,
    range_tensor,
    read_binary_files,
    read_csv,
    read_images,
    read_json,
    read_numpy,
    read_parquet,
    read_text,
)
from ember.data.schema import Schema

#: Ray's older name for DataContext
DatasetContext = DataContext

__all__ = [
    "ActorPoolStrategy",
    "DataContext",
    "DataIterator",
    "Dataset",
    "ExecutionOptions",
    "ExecutionResources",
    "Schema",
    "TaskPoolStrategy",
    "DatasetContext",
    "from_arrow",
    "from_arrow_refs",
    "from_blocks",
    "from_numpy_refs",
    "from_pandas_refs",
    "from_items",
    "from_numpy",
    "from_pandas",
    "range",
    "range_tensor",
    "read_binary_files",
    "read_csv",
    "read_images",
    "read_json",
    "read_numpy",
    "read_parquet",
    "read_text",
]
