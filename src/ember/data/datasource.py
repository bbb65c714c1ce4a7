"""File data sources: resolving paths (local, dirs, globs, URLs) and the read tasks of each format."""

from __future__ import annotations

import functools
import glob as globlib
import os
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from ember.data._plan import ReadTask


def resolve_filesystem(path: str, filesystem: Any = None) -> tuple[Any, str]:
    """(pyarrow filesystem, path inside it) for a local path or a URL (s3://, gs://, memory://...)."""
    if filesystem is not None:
        if not isinstance(filesystem, pafs.FileSystem):
            filesystem = pafs.PyFileSystem(pafs.FSSpecHandler(filesystem))
        return filesystem, path
    if "://" not in path:
        return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(path))
    try:
        return pafs.FileSystem.from_uri(path)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        import fsspec

        fs, inner = fsspec.core.url_to_fs(path)
        return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), inner


def expand_paths(
    paths: str | list[str], filesystem: Any = None, extensions: list[str] | None = None
) -> tuple[Any, list[str]]:
    """All files named by ``paths``: files, directories (recursively) and globs."""
    if isinstance(paths, str):
        paths = [paths]
    if not paths:
        raise ValueError("Must provide at least one path.")
    fs: Any = None
    files: list[str] = []
    for p in paths:
        pfs, inner = resolve_filesystem(p, filesystem)
        fs = fs or pfs
        if any(ch in inner for ch in "*?[") and isinstance(pfs, pafs.LocalFileSystem):
            matched = sorted(globlib.glob(inner, recursive=True))
            if not matched:
                raise FileNotFoundError(f"No files match the pattern {p!r}")
            files.extend(m for m in matched if os.path.isfile(m))
            continue
        info = pfs.get_file_info(inner)
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"No such file or directory: {p!r}")
        if info.type == pafs.FileType.Directory:
            sel = pafs.FileSelector(inner, recursive=True)
            found = sorted(
                i.path
                for i in pfs.get_file_info(sel)
                if i.type == pafs.FileType.File
                and not os.path.basename(i.path).startswith((".", "_"))
            )
            files.extend(found)
        else:
            files.append(inner)
    if extensions:
        exts = tuple("." + e.lower().lstrip(".") for e in extensions)
        files = [f for f in files if f.lower().endswith(exts)]
    if not files:
        raise ValueError(f"No input files found to read from {paths}")
    return fs, files


def _group(files: list[str], num_blocks: int | None) -> list[list[str]]:
    n = len(files) if not num_blocks else max(1, min(num_blocks, len(files)))
    groups: list[list[str]] = [[] for _ in range(n)]
    for i, f in enumerate(files):
        groups[i * n // len(files)].append(f)
    return [g for g in groups if g]


def _with_path(table: pa.Table, path: str, include: bool) -> pa.Table:
    if not include:
        return table
    return table.append_column("path", pa.array([path] * table.num_rows, pa.string()))


def _read_files(
    fmt: str, fs: Any, files: list[str], options: dict[str, Any]
) -> list[pa.Table]:
    out = []
    for f in files:
        out.append(
            _with_path(
                READERS[fmt](fs, f, options), f, options.get("include_paths", False)
            )
        )
    return out


def _parquet(fs: Any, path: str, options: dict[str, Any]) -> pa.Table:
    import pyarrow.dataset as pds

    dataset = pds.dataset(path, filesystem=fs, format="parquet")
    return dataset.to_table(
        columns=options.get("columns"), filter=options.get("filter")
    )


def _csv(fs: Any, path: str, options: dict[str, Any]) -> pa.Table:
    import pyarrow.csv as pcsv

    with fs.open_input_stream(path) as f:
        return pcsv.read_csv(f, **options.get("arrow_csv_args", {}))


def _json(fs: Any, path: str, options: dict[str, Any]) -> pa.Table:
    import pyarrow.json as pjson

    with fs.open_input_stream(path) as f:
        data = f.read()
    stripped = data.lstrip()
    if stripped.startswith(b"["):
        import json

        from ember.data.block import table_from_rows

        return table_from_rows(json.loads(data))
    return pjson.read_json(pa.BufferReader(data))


def _text(fs: Any, path: str, options: dict[str, Any]) -> pa.Table:
    with fs.open_input_stream(path) as f:
        text = f.read().decode(options.get("encoding", "utf-8"))
    lines = text.splitlines()
    if options.get("drop_empty_lines", True):
        lines = [ln for ln in lines if ln.strip()]
    return pa.table({"text": pa.array(lines, pa.string())})


def _binary(fs: Any, path: str, options: dict[str, Any]) -> pa.Table:
    with fs.open_input_stream(path) as f:
        return pa.table({"bytes": pa.array([f.read()], pa.binary())})


def _numpy(fs: Any, path: str, options: dict[str, Any]) -> pa.Table:
    import io

    import numpy as np

    from ember.data.block import table_from_columns

    with fs.open_input_stream(path) as f:
        arr = np.load(io.BytesIO(f.read()), allow_pickle=False)
    return table_from_columns({"data": arr})


def _image(fs: Any, path: str, options: dict[str, Any]) -> pa.Table:
    import io

    import numpy as np
    from PIL import Image

    from ember.data.block import table_from_columns

    with fs.open_input_stream(path) as f:
        img = Image.open(io.BytesIO(f.read()))
        if options.get("mode"):
            img = img.convert(options["mode"])
        if options.get("size"):
            img = img.resize(tuple(reversed(options["size"])))
        arr = np.asarray(img)
    return table_from_columns({"image": arr[None, ...]})


READERS = {
    "parquet": _parquet,
    "csv": _csv,
    "json": _json,
    "text": _text,
    "binary": _binary,
    "numpy": _numpy,
    "images": _image,
}


def file_read_tasks(
    fmt: str,
    paths: str | list[str],
    filesystem: Any,
    num_blocks: int | None,
    options: dict[str, Any],
    extensions: list[str] | None = None,
) -> tuple[list[ReadTask], list[str]]:
    fs, files = expand_paths(paths, filesystem, extensions)
    groups = _group(files, num_blocks)
    rows = (
        _parquet_rows(fs, groups)
        if fmt == "parquet" and options.get("filter") is None
        else None
    )
    tasks = [
        ReadTask(
            functools.partial(_read_files, fmt, fs, group, options),
            num_rows=rows[i] if rows is not None else None,
        )
        for i, group in enumerate(groups)
    ]
    return tasks, files


#: read the footers of at most this many Parquet files in the driver (for count())
_MAX_FOOTERS = 1000


def _parquet_rows(fs: Any, groups: list[list[str]]) -> list[int] | None:
    """Rows per read task from the files' footers (no data read), or None."""
    import pyarrow.parquet as pq

    if sum(len(g) for g in groups) > _MAX_FOOTERS:
        return None
    try:
        out = []
        for group in groups:
            n = 0
            for path in group:
                with fs.open_input_file(path) as f:
                    n += pq.ParquetFile(f).metadata.num_rows
            out.append(n)
        return out
    except (OSError, pa.ArrowException):
        return None


def with_parquet_filter(
    tasks: tuple[ReadTask, ...], expr: Any
) -> tuple[ReadTask, ...] | None:
    """The same Parquet read tasks with ``expr`` added to their scan filter (None: not Parquet)."""
    out = []
    for task in tasks:
        read = task.read
        if not (
            isinstance(read, functools.partial)
            and read.func is _read_files
            and read.args[0] == "parquet"
        ):
            return None
        fmt, fs, group, options = read.args
        current = options.get("filter")
        combined = expr if current is None else (current & expr)
        out.append(
            ReadTask(
                functools.partial(
                    _read_files, fmt, fs, group, {**options, "filter": combined}
                )
            )
        )
    return tuple(out)
