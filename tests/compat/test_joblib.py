"""joblib on the cluster (``ray.util.joblib.register_ray``), and scikit-learn's n_jobs.

Runs unchanged on Ray where joblib and scikit-learn are installed.
"""

from __future__ import annotations

import os

import pytest

import ember as ray
from ember.util.joblib import register_ray

joblib = pytest.importorskip("joblib")


def _make_functions():
    # Defined inside a function so that they are pickled by value: workers need
    # not import this test module.
    def square(x):
        return x * x

    def pid(_):
        return os.getpid()

    def fail_on(x, bad):
        if x == bad:
            raise ValueError(f"item {x} is bad")
        return x

    return square, pid, fail_on


_square, _pid, _fail_on = _make_functions()


def test_parallel_map_gives_the_results_in_order(ray_module):
    register_ray()
    with joblib.parallel_backend("ray"):
        out = joblib.Parallel(n_jobs=2)(joblib.delayed(_square)(i) for i in range(200))
    assert out == [i * i for i in range(200)]


@pytest.mark.cluster_only("needs worker processes")
def test_calls_run_in_workers_not_in_the_driver(ray_module):
    register_ray()
    with joblib.parallel_backend("ray", n_jobs=-1):
        pids = joblib.Parallel()(joblib.delayed(_pid)(i) for i in range(20))
    assert os.getpid() not in pids


def test_many_small_calls_are_batched(ray_module):
    register_ray()
    with joblib.parallel_backend("ray"):
        par = joblib.Parallel(n_jobs=2, batch_size="auto")
        out = par(joblib.delayed(_square)(i) for i in range(2000))
        assert out == [i * i for i in range(2000)]
        fixed = joblib.Parallel(n_jobs=2, batch_size=50)
        assert fixed(joblib.delayed(_square)(i) for i in range(300)) == [
            i * i for i in range(300)
        ]


def test_an_error_in_a_call_reaches_the_caller(ray_module):
    register_ray()
    with (
        joblib.parallel_backend("ray"),
        pytest.raises(ValueError, match="item 7 is bad"),
    ):
        joblib.Parallel(n_jobs=2)(joblib.delayed(_fail_on)(i, 7) for i in range(20))


def test_ray_remote_args_are_applied(ray_module):
    register_ray()
    with joblib.parallel_backend("ray", ray_remote_args={"resources": {"custom": 1}}):
        out = joblib.Parallel(n_jobs=2)(joblib.delayed(_square)(i) for i in range(10))
    assert out == [i * i for i in range(10)]


def test_grid_search_cv_with_all_jobs_gives_the_sequential_answer(ray_module):
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    X, y = load_iris(return_X_y=True)
    grid = {"C": [0.1, 1.0, 10.0], "gamma": ["scale", 0.1, 1.0]}
    sequential = GridSearchCV(SVC(), grid, cv=3, n_jobs=1).fit(X, y)
    register_ray()
    with joblib.parallel_backend("ray"):
        spread = GridSearchCV(SVC(), grid, cv=3, n_jobs=-1).fit(X, y)
    assert spread.best_params_ == sequential.best_params_
    assert spread.best_score_ == pytest.approx(sequential.best_score_)
    assert list(spread.cv_results_["mean_test_score"]) == pytest.approx(
        list(sequential.cv_results_["mean_test_score"])
    )


def test_n_jobs_minus_one_means_the_cluster_cpus(ray_module):
    register_ray()
    with joblib.parallel_backend("ray"):
        n = joblib.effective_n_jobs(-1)
    assert n == int(ray.cluster_resources()["CPU"])
