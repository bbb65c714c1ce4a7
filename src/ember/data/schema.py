"""Schema: a dataset's column names and types (wraps a pyarrow.Schema, printed as Ray prints it)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa


class Schema:
    def __init__(self, base_schema: pa.Schema) -> None:
        self.base_schema = base_schema

    @property
    def names(self) -> list[str]:
        return list(self.base_schema.names)

    @property
    def types(self) -> list[Any]:
        return list(self.base_schema.types)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self.base_schema == other.base_schema

    def __hash__(self) -> int:
        return hash(tuple(self.names))

    def __len__(self) -> int:
        return len(self.base_schema)

    def __repr__(self) -> str:
        names = self.names
        types = [_type_name(t) for t in self.types]
        w1 = max([len("Column"), *(len(n) for n in names)])
        w2 = max([len("Type"), *(len(t) for t in types)])
        lines = [
            f"{'Column':<{w1}}  Type",
            f"{'-' * len('Column'):<{w1}}  {'-' * len('Type')}",
        ]
        lines += [f"{n:<{w1}}  {t}" for n, t in zip(names, types, strict=True)]
        del w2
        return "\n".join(lines)


def _type_name(t: Any) -> str:
    if isinstance(t, pa.FixedShapeTensorType):
        return f"ArrowTensorTypeV2(shape={tuple(t.shape)}, dtype={t.value_type})"
    return str(t)
