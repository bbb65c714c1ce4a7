"""Dask on the cluster (``ray.util.dask``): arrays, dataframes, bags, persist, callbacks.

Every answer is checked against Dask's own single-threaded scheduler. Runs
unchanged on Ray where Dask is installed.
"""

from __future__ import annotations

import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
db = pytest.importorskip("dask.bag")
np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")

import ember as ray  # noqa: E402
from ember.util.dask import (  # noqa: E402 - needs dask, checked just above
    ProgressBarCallback,
    RayDaskCallback,
    disable_dask_on_ray,
    enable_dask_on_ray,
    ray_dask_get,
    ray_dask_persist,
)


def _frame():
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "k": rng.integers(0, 13, 2000),
            "v": rng.random(2000),
            "w": rng.integers(0, 100, 2000),
        }
    )


def test_the_seed_program_sums_a_chunked_array(ray_module):
    data = da.ones((1000, 1000), chunks=(100, 100))
    result = data.sum().compute(scheduler=ray_dask_get)
    assert result == 1_000_000
    assert result == data.sum().compute(scheduler="sync")


def test_array_results_match_dask_for_a_reduction_over_several_steps(ray_module):
    x = da.arange(10_000, chunks=1_000).reshape(100, 100).rechunk((25, 50))
    expr = (x.T @ x).mean(axis=0) + x.std()
    assert np.allclose(
        expr.compute(scheduler=ray_dask_get), expr.compute(scheduler="sync")
    )


def test_enable_dask_on_ray_makes_it_the_default_and_disable_undoes_it(ray_module):
    submitted = []
    cb = RayDaskCallback(
        ray_postsubmit=lambda task, key, deps, ref: submitted.append(key)
    )
    x = da.ones(10, chunks=5).sum()
    try:
        enable_dask_on_ray()
        with cb:
            assert x.compute() == 10
        assert submitted, "compute() did not go through the ray scheduler"
    finally:
        disable_dask_on_ray()
    submitted.clear()
    with cb:
        assert x.compute() == 10
    assert submitted == []


def test_enable_dask_on_ray_as_a_context_manager(ray_module):
    submitted = []
    cb = RayDaskCallback(
        ray_postsubmit=lambda task, key, deps, ref: submitted.append(key)
    )
    with enable_dask_on_ray(), cb:
        assert da.ones(6, chunks=2).sum().compute() == 6
    assert submitted


def test_dataframe_groupby_matches_dasks_answer(ray_module):
    ddf = dd.from_pandas(_frame(), npartitions=5)
    agg = ddf.groupby("k").agg({"v": "sum", "w": "max"})
    ours = agg.compute(scheduler=ray_dask_get).sort_index()
    theirs = agg.compute(scheduler="sync").sort_index()
    pd.testing.assert_frame_equal(ours, theirs)
    mean = ddf.groupby("k").v.mean().compute(scheduler=ray_dask_get).sort_index()
    pd.testing.assert_series_equal(mean, _frame().groupby("k").v.mean().sort_index())


def test_dataframe_shuffle_keeps_every_row(ray_module):
    ddf = dd.from_pandas(_frame(), npartitions=4)
    with dask.config.set({"dataframe.shuffle.method": "tasks"}):
        shuffled = ddf.shuffle("k", npartitions=3)
        parts = shuffled.map_partitions(lambda p: p.k.nunique()).compute(
            scheduler=ray_dask_get
        )
        out = shuffled.compute(scheduler=ray_dask_get)
    assert len(parts) == 3
    expected = _frame().sort_values(["k", "v"]).reset_index(drop=True)
    got = out.sort_values(["k", "v"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)


def test_bag_word_count_matches_dasks_answer(ray_module):
    lines = [
        f"the quick brown fox {i % 7} jumps over the lazy dog {i % 3}"
        for i in range(300)
    ]
    bag = db.from_sequence(lines, npartitions=6).str.split().flatten().frequencies()
    ours = dict(bag.compute(scheduler=ray_dask_get))
    assert ours == dict(bag.compute(scheduler="sync"))
    assert ours["the"] == 600


def test_delayed_graphs_run(ray_module):
    @dask.delayed
    def inc(x):
        return x + 1

    @dask.delayed
    def total(xs):
        return sum(xs)

    out = total([inc(i) for i in range(20)])
    assert out.compute(scheduler=ray_dask_get) == sum(range(1, 21))


def test_persist_keeps_refs_in_the_object_store(ray_module):
    x = da.arange(100, chunks=10) * 2
    (persisted,) = ray_dask_persist(x, scheduler=ray_dask_get)
    values = list(dict(persisted.__dask_graph__()).values())
    assert len(values) == 10
    assert all(isinstance(v, ray.ObjectRef) for v in values)
    assert persisted.sum().compute(scheduler=ray_dask_get) == 9900
    assert np.array_equal(ray.get(values[0]), np.arange(10) * 2)


@pytest.mark.ember_only
def test_ray_dask_persist_defaults_to_the_ember_scheduler(ray_module):
    (persisted,) = ray_dask_persist(da.arange(20, chunks=10))
    values = list(dict(persisted.__dask_graph__()).values())
    assert values
    assert all(isinstance(v, ray.ObjectRef) for v in values)


def test_persist_method_under_enable_keeps_refs(ray_module):
    ddf = dd.from_pandas(_frame(), npartitions=3)
    with enable_dask_on_ray():
        persisted = (ddf[ddf.w > 50]).persist()
        refs = [
            v
            for v in dict(persisted.__dask_graph__()).values()
            if isinstance(v, ray.ObjectRef)
        ]
        assert len(refs) == 3
        total = persisted.v.sum().compute()
    frame = _frame()
    assert total == pytest.approx(frame[frame.w > 50].v.sum())


def test_persist_with_another_scheduler_keeps_values():
    # no cluster needed: the wrapped persist leaves Dask's own schedulers alone
    import ember.util.dask  # noqa: F401 - installs the persist wrappers

    (p,) = dask.persist(da.arange(6, chunks=3), scheduler="sync")
    assert not any(
        isinstance(v, ray.ObjectRef) for v in dict(p.__dask_graph__()).values()
    )


def test_driver_side_callbacks_fire_in_order(ray_module):
    seen = []
    cb = RayDaskCallback(
        ray_presubmit=lambda task, key, deps: seen.append(("presubmit", key)),
        ray_postsubmit=lambda task, key, deps, ref: seen.append(("postsubmit", key)),
        ray_postsubmit_all=lambda refs, dsk: seen.append(("all", len(refs))),
        ray_finish=lambda result: seen.append(("finish", result)),
    )
    x = da.ones(8, chunks=4).sum()
    with cb:
        assert x.compute(scheduler=ray_dask_get) == 8
    kinds = [s[0] for s in seen]
    assert kinds[-2:] == ["all", "finish"]
    assert seen[-1] == ("finish", [8])
    pre = [k for kind, k in seen if kind == "presubmit"]
    post = [k for kind, k in seen if kind == "postsubmit"]
    assert post
    assert set(post) <= set(pre)  # every submitted task was offered to presubmit first


def test_presubmit_can_replace_a_task_with_a_value(ray_module):
    @dask.delayed
    def slow():
        raise AssertionError("should have been replaced")

    @dask.delayed
    def plus_one(v):
        return v + 1

    node = slow()
    out = plus_one(node)

    def presubmit(task, key, deps):
        return 41 if key == node.key else None

    with RayDaskCallback(ray_presubmit=presubmit):
        assert out.compute(scheduler=ray_dask_get) == 42


def test_worker_side_callbacks_get_their_own_pre_state(ray_module, counter_cls):
    counter = counter_cls.remote()

    def pretask(key, values):
        return "token"

    def posttask(key, result, pre_state):
        assert pre_state == "token"
        ray.get(counter.incr.remote())

    x = da.ones(12, chunks=3).sum()
    with RayDaskCallback(ray_pretask=pretask, ray_posttask=posttask):
        assert x.compute(scheduler=ray_dask_get) == 12
    assert ray.get(counter.get.remote()) >= 4  # at least one per chunk


def test_a_failing_dask_task_raises_its_error(ray_module):
    @dask.delayed
    def bad():
        raise ValueError("broken chunk")

    with pytest.raises(ValueError, match="broken chunk"):
        bad().compute(scheduler=ray_dask_get)


def test_resources_must_go_through_ray_remote_args(ray_module):
    with pytest.raises(ValueError, match="ray_remote_args"):
        da.ones(4, chunks=2).sum().compute(scheduler=ray_dask_get, resources={"CPU": 1})


def test_ray_remote_args_reach_the_tasks(ray_module):
    # the module cluster has two "custom" units; a task needing one runs
    x = da.ones(4, chunks=2).sum()
    args = {"resources": {"custom": 1}}
    assert x.compute(scheduler=ray_dask_get, ray_remote_args=args) == 4
    with dask.annotate(ray_remote_args=args):
        y = da.ones(6, chunks=2).sum()
    assert y.compute(scheduler=ray_dask_get) == 6


def test_progress_bar_callback_records_every_task(ray_module, capsys):
    if ray.__name__ == "ray":
        pytest.importorskip("tqdm")  # Ray draws its progress bar with tqdm
    x = da.ones(9, chunks=3).sum()
    with ProgressBarCallback():
        assert x.compute(scheduler=ray_dask_get, _ray_enable_progress_bar=True) == 9
    assert "All tasks are completed." in capsys.readouterr().out


def test_dasks_own_callbacks_fire_too(ray_module):
    from dask.callbacks import Callback
    from dask.diagnostics import ProgressBar

    seen = []
    cb = Callback(
        start=lambda dsk: seen.append("start"),
        finish=lambda dsk, state, failed: seen.append(("finish", failed)),
    )
    x = da.ones(10, chunks=5).sum()
    with cb, ProgressBar(out=None):
        assert x.compute(scheduler=ray_dask_get) == 10
    assert seen[0] == "start"
    assert seen[-1] == ("finish", False)


@pytest.mark.cluster_only(
    "objects pass through the shared-memory store between workers"
)
def test_a_large_array_reaches_the_next_task_without_a_copy(ray_module):
    @dask.delayed
    def make():
        return np.ones(2_000_000)

    @dask.delayed
    def inspect(a):
        # a view of the store's read-only buffer, not a private copy
        return (a.flags.writeable, float(a.sum()))

    assert inspect(make()).compute(scheduler=ray_dask_get) == (False, 2_000_000.0)
