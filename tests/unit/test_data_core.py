"""ember.data's pure parts: block conversions, re-batching, the budget, fusion, compute options."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ember.data import block as B
from ember.data._batcher import batch_tables
from ember.data._budget import Budget, StageLoad
from ember.data._plan import ActorPoolSpec, LimitOp, MapSpec, fuse
from ember.data._transforms import make_callable, run_ops
from ember.data.compute import ActorPoolStrategy, TaskPoolStrategy, resolve_compute
from ember.data.schema import Schema
from ember.exceptions import UserCodeException


def test_batch_formats_round_trip_scalars_and_tensors():
    t = B.table_from_columns({"id": np.arange(3), "img": np.ones((3, 2, 2))})
    assert isinstance(t.schema.field("img").type, pa.FixedShapeTensorType)
    nb = B.to_batch(t, "numpy")
    assert nb["img"].shape == (3, 2, 2)
    assert nb["id"].tolist() == [0, 1, 2]
    df = B.to_batch(t, "pandas")
    assert isinstance(df, pd.DataFrame)
    assert df["img"][0].shape == (2, 2)
    assert B.from_batch(df).schema == t.schema
    assert B.from_batch(nb).equals(t)
    rows = list(B.iter_rows(t))
    assert rows[2]["id"] == 2
    assert rows[2]["img"].shape == (2, 2)


def test_rows_to_table_and_bad_batches_are_typed_errors():
    t = B.table_from_rows([{"a": 1}, {"a": 2, "b": "x"}])
    assert t.to_pylist() == [{"a": 1, "b": None}, {"a": 2, "b": "x"}]
    with pytest.raises(TypeError, match="dict of column name"):
        B.table_from_rows([1])
    with pytest.raises(TypeError, match="a batch must be"):
        B.from_batch([1, 2])
    with pytest.raises(ValueError, match="batch_format"):
        B.check_batch_format("arrow")
    assert B.check_batch_format("default") == "numpy"


def test_batcher_sizes_drop_last_and_local_shuffle():
    blocks = [pa.table({"x": np.arange(i * 7, i * 7 + 7)}) for i in range(3)]  # 21 rows
    sizes = [b.num_rows for b in batch_tables(iter(blocks), 5)]
    assert sizes == [5, 5, 5, 5, 1]
    assert [b.num_rows for b in batch_tables(iter(blocks), 5, drop_last=True)] == [
        5,
        5,
        5,
        5,
    ]
    assert [b.num_rows for b in batch_tables(iter(blocks), None)] == [7, 7, 7]
    shuffled = list(
        batch_tables(iter(blocks), 5, shuffle_buffer_size=10, shuffle_seed=1)
    )
    values = np.concatenate([b.column("x").to_numpy() for b in shuffled])
    assert sorted(values.tolist()) == list(range(21))
    assert values.tolist() != list(range(21))
    again = list(batch_tables(iter(blocks), 5, shuffle_buffer_size=10, shuffle_seed=1))
    assert (
        np.concatenate([b.column("x").to_numpy() for b in again]).tolist()
        == values.tolist()
    )


def test_budget_holds_back_the_first_stage_only():
    first, second = StageLoad(cap=4), StageLoad(cap=4)
    budget = Budget(limit_bytes=100, stages=[first, second])
    first.queued = 10
    assert budget.can_launch(0)  # nothing known yet: start
    first.in_flight, first.est_block_bytes = 1, 60
    assert not budget.can_launch(0)  # 60 in flight + 60 more > 100
    second.queued, second.held_bytes = 3, 500
    assert budget.over_budget()
    assert budget.can_launch(1)  # downstream always drains
    second.in_flight = 4
    assert not budget.can_launch(1)  # but within its cap
    # with nothing in flight and nothing held, one task may always start
    first.in_flight = second.in_flight = second.held_bytes = 0
    budget.limit_bytes = 1
    assert budget.can_launch(0)


def _spec(name, pool=None, **remote):
    return MapSpec(
        name=name, kind="batches", fn=lambda b: b, pool=pool, remote_args=remote
    )


def test_fusion_rules():
    ops = [_spec("A"), _spec("B"), _spec("C", num_gpus=1), LimitOp(3), _spec("D")]
    stages = fuse("ReadX", True, ops)
    assert [s.name for s in stages] == ["ReadX->A->B", "C", "limit=3", "D"]
    pool = ActorPoolSpec(1, 2)
    stages = fuse("FromItems", False, [_spec("A"), _spec("K", pool=pool), _spec("E")])
    assert [s.name for s in stages] == ["A", "K->E"]
    assert stages[1].pool == pool


def test_transform_errors_name_the_operator_and_the_row():
    def boom(row):
        raise ValueError("bad value")

    op = MapSpec(name="Map(boom)", kind="rows", fn=boom)
    with pytest.raises(
        UserCodeException, match=r"Map\(boom\).*bad value.*'id': 0"
    ) as info:
        run_ops([op], [boom], iter([pa.table({"id": [0, 1]})]))
    assert isinstance(info.value.__cause__, ValueError)
    flt = MapSpec(name="Filter(f)", kind="filter", fn=lambda r: r["id"] > 0)
    out = run_ops([flt], [flt.fn], iter([pa.table({"id": [0, 1, 2]})]))
    assert out.column("id").to_pylist() == [1, 2]


def test_callable_class_is_built_with_constructor_args():
    class Add:
        def __init__(self, k):
            self.k = k

        def __call__(self, batch):
            return {"id": batch["id"] + self.k}

    op = MapSpec(
        name="MapBatches(Add)",
        kind="batches",
        fn=Add,
        fn_constructor_args=(10,),
        batch_size=2,
    )
    out = run_ops([op], [make_callable(op)], iter([pa.table({"id": [1, 2, 3]})]))
    assert out.column("id").to_pylist() == [11, 12, 13]


def test_compute_options_follow_rays_rules():
    class C:
        def __call__(self, b):
            return b

    def f(b):
        return b

    assert resolve_compute(C, None, (1, 3), False, 8) == (ActorPoolSpec(1, 3), None)
    assert resolve_compute(C, None, 2, False, 8) == (ActorPoolSpec(2, 2), None)
    assert resolve_compute(C, None, None, False, 8) == (ActorPoolSpec(1, 8), None)
    assert resolve_compute(f, None, 3, False, 8) == (None, 3)
    assert resolve_compute(f, TaskPoolStrategy(size=2), None, False, 8) == (None, 2)
    assert resolve_compute(
        C, ActorPoolStrategy(min_size=2, max_size=4), None, False, 8
    ) == (
        ActorPoolSpec(2, 4),
        None,
    )
    with pytest.raises(ValueError, match="not a callable class"):
        resolve_compute(f, None, (1, 2), False, 8)
    with pytest.raises(ValueError, match="fn_constructor_args"):
        resolve_compute(f, None, None, True, 8)
    with pytest.raises(ValueError, match="actor pool"):
        resolve_compute(C, "tasks", None, False, 8)
    with pytest.raises(ValueError, match="min_size"):
        ActorPoolStrategy(min_size=3, max_size=2)


def test_schema_prints_like_ray():
    s = Schema(pa.schema([("id", pa.int64()), ("text", pa.string())]))
    assert repr(s) == "Column  Type\n------  ----\nid      int64\ntext    string"
    assert s.names == ["id", "text"]


class _Tty:
    def isatty(self):
        return True

    def write(self, s):
        return len(s)

    def flush(self):
        pass


def test_progress_bars_only_on_a_terminal_and_when_enabled(monkeypatch):
    from ember.data._progress import ProgressBars
    from ember.data.context import DataContext

    ctx = DataContext()
    assert ProgressBars(["ReadRange"], 4, ctx)._bars == []  # pytest's stderr is no tty
    monkeypatch.setattr("sys.stderr", _Tty())
    bars = ProgressBars(["ReadRange", "MapBatches(f)"], 4, ctx)
    assert [b.desc for b in bars._bars] == ["- ReadRange", "- MapBatches(f)"]
    bars.update(1)
    assert bars._bars[1].n == 1
    bars.close()
    ctx.enable_progress_bars = False
    assert ProgressBars(["ReadRange"], 4, ctx)._bars == []


def test_filter_expressions_become_arrow_expressions():
    from ember.data._expr import to_arrow_expression

    t = pa.table({"a": [1, 2, 3, 4], "b": ["x", "y", "x", None]})

    def rows(expr):
        return t.filter(to_arrow_expression(expr)).column("a").to_pylist()

    assert rows("a > 2") == [3, 4]
    assert rows("1 < a <= 3") == [2, 3]
    assert rows("a == 1 or b == 'y'") == [1, 2]
    assert rows("not (a >= 2) and b in ('x', 'y')") == [1]
    assert rows("b is None") == [4]
    assert rows("b not in ['x']") == [2, 4]
    # other syntax is left to pandas
    assert to_arrow_expression("a % 2 == 0") is None
    assert to_arrow_expression("a >") is None
