"""A user's program for test_dask_cluster: Dask and joblib work on a running cluster.

Connects with ``ray.init()`` (EMBER_ADDRESS=auto in its environment), runs the
seed's array sum, a dataframe groupby, a bag word count, a persisted array, a
spread of Dask tasks and a GridSearchCV through joblib, each also with Dask's
or scikit-learn's own local execution, and prints one JSON object.
"""

from __future__ import annotations

import json
import os

import dask
import dask.array as da
import dask.bag as db
import dask.dataframe as dd
import joblib
import numpy as np
import pandas as pd
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV
from sklearn.svm import SVC

import ember as ray
from ember.util.dask import enable_dask_on_ray, ray_dask_get, ray_dask_persist
from ember.util.joblib import register_ray


@dask.delayed
def where(i):
    return ray.get_runtime_context().get_node_id()


def frame():
    rng = np.random.default_rng(3)
    return pd.DataFrame({"k": rng.integers(0, 9, 3000), "v": rng.random(3000)})


def main():
    ray.init()
    out = {"driver_node": ray.get_runtime_context().get_node_id()}

    data = da.ones((1000, 1000), chunks=(100, 100))
    out["seed_sum"] = float(data.sum().compute(scheduler=ray_dask_get))
    out["seed_sum_local"] = float(data.sum().compute(scheduler="sync"))

    ddf = dd.from_pandas(frame(), npartitions=6)
    with enable_dask_on_ray():
        ours = ddf.groupby("k").v.sum().compute().sort_index()
    theirs = ddf.groupby("k").v.sum().compute(scheduler="sync").sort_index()
    out["groupby_equal"] = bool(np.allclose(ours.values, theirs.values))
    out["groupby_index_equal"] = list(ours.index) == list(theirs.index)

    lines = [f"a b c {i % 5} a" for i in range(500)]
    words = db.from_sequence(lines, npartitions=8).str.split().flatten().frequencies()
    out["bag_equal"] = dict(words.compute(scheduler=ray_dask_get)) == dict(
        words.compute(scheduler="sync")
    )

    (kept,) = ray_dask_persist(da.arange(1000, chunks=100) + 1)
    refs = list(dict(kept.__dask_graph__()).values())
    out["persisted_refs"] = sum(isinstance(r, ray.ObjectRef) for r in refs)
    out["persisted_sum"] = int(kept.sum().compute(scheduler=ray_dask_get))

    spread = {"scheduling_strategy": "SPREAD"}  # ray_remote_args reach every task
    nodes = dask.compute(
        *[where(i) for i in range(12)], scheduler=ray_dask_get, ray_remote_args=spread
    )
    out["task_nodes"] = sorted(set(nodes))

    X, y = load_iris(return_X_y=True)
    grid = {"C": [0.1, 1.0, 10.0], "gamma": ["scale", 0.5]}
    sequential = GridSearchCV(SVC(), grid, cv=3, n_jobs=1).fit(X, y)
    register_ray()
    with joblib.parallel_backend("ray"):
        spread = GridSearchCV(SVC(), grid, cv=3, n_jobs=-1).fit(X, y)
        pids = joblib.Parallel(n_jobs=-1)(joblib.delayed(os.getpid)() for _ in range(8))
    out["grid_equal"] = spread.best_params_ == sequential.best_params_ and bool(
        np.allclose(
            spread.cv_results_["mean_test_score"],
            sequential.cv_results_["mean_test_score"],
        )
    )
    out["joblib_in_driver"] = os.getpid() in pids
    print(json.dumps(out))
    ray.shutdown()


if __name__ == "__main__":
    main()
