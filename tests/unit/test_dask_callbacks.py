"""RayDaskCallback's hooks, gathered per hook (ember.util.dask.callbacks); no cluster."""

from __future__ import annotations

import pytest

pytest.importorskip("dask")

from ember.util.dask.callbacks import (
    RayCallback,
    RayDaskCallback,
    local_ray_callbacks,
    normalize_ray_callback,
    unpack_ray_callbacks,
)


def _pre(key, values):
    return "a"


def _post(key, result, pre_state):
    return None


def _finish(result):
    return None


def test_worker_hooks_stay_aligned_per_callback():
    only_post = RayDaskCallback(ray_posttask=_post)
    only_pre = RayDaskCallback(ray_pretask=_pre, ray_finish=_finish)
    cbs = unpack_ray_callbacks([only_post, only_pre])
    assert cbs.ray_pretask_cbs == [None, _pre]
    assert cbs.ray_posttask_cbs == [_post, None]
    assert cbs.ray_finish_cbs == [_finish]
    assert cbs.ray_presubmit_cbs == []


def test_no_worker_hooks_means_empty_lists():
    cbs = unpack_ray_callbacks([RayDaskCallback(ray_finish=_finish)])
    assert cbs.ray_pretask_cbs == []
    assert cbs.ray_posttask_cbs == []
    assert unpack_ray_callbacks(None).ray_finish_cbs == []


def test_subclass_hooks_are_found():
    class Mine(RayDaskCallback):
        def _ray_presubmit(self, task, key, deps):
            return None

    hooks = normalize_ray_callback(Mine())
    assert isinstance(hooks, RayCallback)
    assert hooks.ray_presubmit is not None
    assert hooks.ray_postsubmit is None


def test_with_block_activates_and_the_scheduler_takes_them_once():
    cb = RayDaskCallback(ray_finish=_finish)
    with cb:
        with local_ray_callbacks() as active:
            assert cb._ray_callback in active
            with local_ray_callbacks() as nested:
                assert not nested  # a scheduler inside a task does not fire them again
        assert cb._ray_callback in RayDaskCallback.ray_active
    assert cb._ray_callback not in RayDaskCallback.ray_active


def test_anything_else_is_a_type_error():
    with pytest.raises(TypeError, match="RayDaskCallback"):
        normalize_ray_callback(object())
