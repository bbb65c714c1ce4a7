"""ember.data's file I/O: reads (push-down, globs, dirs, URLs), writes, round trips."""

from __future__ import annotations

import functools
import json
import operator
import os

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.dataset as pds
import pyarrow.parquet as pq
import pytest

import ember

pytestmark = pytest.mark.multiprocess


@pytest.fixture(scope="module")
def cluster():
    ember.init(num_cpus=2)
    yield
    ember.shutdown()


def _ids(ds, col="id"):
    return sorted(r[col] for r in ds.take_all())


def test_parquet_many_files_columns_and_filter_push_down(cluster, tmp_path):
    for i in range(4):
        pq.write_table(
            pa.table({"id": list(range(i * 10, i * 10 + 10)), "x": [float(i)] * 10}),
            tmp_path / f"part-{i}.parquet",
        )
    ds = ember.data.read_parquet(str(tmp_path))
    assert ds.count() == 40
    assert ds.num_blocks() == 4
    # count() read the footers only: nothing was executed
    assert ds.stats().startswith("Dataset has not been executed")
    assert (
        ember.data.read_parquet(str(tmp_path), override_num_blocks=2).num_blocks() == 2
    )
    only = ember.data.read_parquet(str(tmp_path), columns=["id"])
    assert only.columns() == ["id"]
    flt = ember.data.read_parquet(str(tmp_path), filter=pds.field("id") >= 35)
    assert _ids(flt) == [35, 36, 37, 38, 39]
    assert ember.data.read_parquet(str(tmp_path / "part-*.parquet")).count() == 40
    assert ember.data.read_parquet(f"file://{tmp_path}/part-1.parquet").count() == 10
    local = fsspec.filesystem("file")
    assert (
        ember.data.read_parquet(
            str(tmp_path / "part-2.parquet"), filesystem=local
        ).count()
        == 10
    )


def test_filter_expressions_are_pushed_into_the_parquet_scan(cluster, tmp_path):
    pq.write_table(pa.table({"id": list(range(20))}), tmp_path / "a.parquet")
    ds = ember.data.read_parquet(str(tmp_path)).filter(expr="id >= 15")
    assert ds._plan.ops == ()  # no filter operator left: the scan filters
    assert _ids(ds) == [15, 16, 17, 18, 19]
    mapped = ember.data.read_parquet(str(tmp_path)).map(lambda r: r)
    assert _ids(mapped.filter(expr="id < 2")) == [0, 1]
    assert _ids(ember.data.read_parquet(str(tmp_path)).filter(expr="id % 7 == 0")) == [
        0,
        7,
        14,
    ]


def test_write_then_read_every_format(cluster, tmp_path):
    ds = ember.data.range(20, override_num_blocks=4).map(
        lambda r: {"id": r["id"], "s": str(r["id"])}
    )
    for fmt, reader in [
        ("parquet", ember.data.read_parquet),
        ("csv", ember.data.read_csv),
        ("json", ember.data.read_json),
    ]:
        out = tmp_path / fmt
        getattr(ds, f"write_{fmt}")(str(out))
        files = sorted(os.listdir(out))
        assert len(files) == 4
        assert all(f.endswith("." + fmt) for f in files)
        back = reader(str(out))
        assert _ids(back) == list(range(20))
    npy = tmp_path / "npy"
    ember.data.range_tensor(6, shape=(2,), override_num_blocks=2).write_numpy(
        str(npy), column="data"
    )
    assert ember.data.read_numpy(str(npy)).count() == 6


def test_text_binary_and_json_array_files(cluster, tmp_path):
    (tmp_path / "a.txt").write_text("hello\nworld\n\nagain\n")
    assert [
        r["text"] for r in ember.data.read_text(str(tmp_path / "a.txt")).take_all()
    ] == ["hello", "world", "again"]
    (tmp_path / "b.bin").write_bytes(b"\x00\x01")
    rows = ember.data.read_binary_files(
        str(tmp_path / "b.bin"), include_paths=True
    ).take_all()
    assert rows[0]["bytes"] == b"\x00\x01"
    assert rows[0]["path"].endswith("b.bin")
    (tmp_path / "c.json").write_text(json.dumps([{"a": 1}, {"a": 2}]))
    assert sorted(
        r["a"] for r in ember.data.read_json(str(tmp_path / "c.json")).take_all()
    ) == [1, 2]


def test_missing_paths_and_optional_packages_give_clear_errors(cluster, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        ember.data.read_parquet(str(tmp_path / "nope"))
    try:
        import PIL  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install Pillow"):
            ember.data.read_images(str(tmp_path))
    try:
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install torch"):
            next(iter(ember.data.range(3).iter_torch_batches()))


def test_split_train_test_and_conversions(cluster):
    ds = ember.data.range(10, override_num_blocks=3)
    parts = ds.split(3, equal=True)
    assert [p.count() for p in parts] == [3, 3, 3]
    assert sorted(
        functools.reduce(operator.iadd, (_ids(p) for p in ds.split(3)), [])
    ) == list(range(10))
    train, test = ds.train_test_split(0.3)
    assert (train.count(), test.count()) == (7, 3)
    assert ds.to_pandas()["id"].tolist() == list(range(10))
    arrays = ember.get(ds.to_numpy_refs(column="id"))
    assert np.concatenate(arrays).tolist() == list(range(10))
    tables = ember.get(ds.to_arrow_refs())
    assert sum(t.num_rows for t in tables) == 10
    m = ds.materialize()
    assert isinstance(m, ember.data.dataset.MaterializedDataset)
    assert m.num_blocks() == 3
