"""Writing a Dataset: one file per block (parquet, csv, json lines, npy), Ray's file names."""

from __future__ import annotations

import uuid
from typing import Any

import ember
from ember.data._plan import Plan
from ember.data.datasource import resolve_filesystem


def _write_block(
    table: Any, fmt: str, fs: Any, path: str, name: str, options: dict[str, Any]
) -> int:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    if table.num_rows == 0:
        return 0
    target = f"{path}/{name}"
    if fmt == "parquet":
        with fs.open_output_stream(target) as f:
            pq.write_table(table, f, **options)
    elif fmt == "csv":
        with fs.open_output_stream(target) as f:
            pcsv.write_csv(table, f)
    elif fmt == "json":
        from ember.data import block as B

        df = B.to_pandas(table)
        with fs.open_output_stream(target) as f:
            f.write(df.to_json(orient="records", lines=True).encode())
    elif fmt == "numpy":
        import io

        import numpy as np

        from ember.data import block as B

        buf = io.BytesIO()
        np.save(buf, B.column_to_numpy(table.column(options["column"])))
        with fs.open_output_stream(target) as f:
            f.write(buf.getvalue())
    return int(table.num_rows)


_write_task = ember.remote(_write_block)

_EXT = {"parquet": "parquet", "csv": "csv", "json": "json", "numpy": "npy"}


class WriteMixin:
    _plan: Plan

    def _write(
        self,
        fmt: str,
        path: str,
        filesystem: Any,
        try_create_dir: bool,
        options: dict[str, Any],
        remote_args: dict[str, Any] | None,
    ) -> None:
        fs, root = resolve_filesystem(path, filesystem)
        if try_create_dir:
            fs.create_dir(root, recursive=True)
        prefix = uuid.uuid4().hex
        task = _write_task.options(**(remote_args or {}))
        pending = []
        for i, (ref, _) in enumerate(self._execute()):  # type: ignore[attr-defined]
            suffix = "-0" if fmt == "parquet" else ""
            name = f"{prefix}_{i:06d}{suffix}.{_EXT[fmt]}"
            pending.append(task.remote(ref, fmt, fs, root, name, options))
            if len(pending) >= 8:
                ember.get(pending.pop(0))
        ember.get(pending)

    def write_parquet(
        self,
        path: str,
        *,
        filesystem: Any = None,
        try_create_dir: bool = True,
        ray_remote_args: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Write one Parquet file per block under ``path``."""
        options = {}
        if kwargs.get("compression"):
            options["compression"] = kwargs["compression"]
        self._write(
            "parquet", path, filesystem, try_create_dir, options, ray_remote_args
        )

    def write_csv(
        self,
        path: str,
        *,
        filesystem: Any = None,
        try_create_dir: bool = True,
        ray_remote_args: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._write("csv", path, filesystem, try_create_dir, {}, ray_remote_args)

    def write_json(
        self,
        path: str,
        *,
        filesystem: Any = None,
        try_create_dir: bool = True,
        ray_remote_args: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Write one JSON-lines file per block."""
        self._write("json", path, filesystem, try_create_dir, {}, ray_remote_args)

    def write_numpy(
        self,
        path: str,
        *,
        column: str,
        filesystem: Any = None,
        try_create_dir: bool = True,
        ray_remote_args: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._write(
            "numpy",
            path,
            filesystem,
            try_create_dir,
            {"column": column},
            ray_remote_args,
        )
