"""Dask workloads on four schedulers: ember, Dask threaded, Dask distributed, Dask on Ray.

Each backend runs in its own fresh process (so one's threads, pools or daemons
never disturb another's)::

    python bench/dask_bench.py --backend {ember,ray,threads,distributed} [--quick] [--json OUT]
    python bench/dask_bench.py --all [--ray-python /tmp/ray-venv/bin/python] [--markdown]

``--all`` runs every backend once (ember and the two Dask ones with this
interpreter, ``ray`` with ``--ray-python``, which needs ``dask[array,dataframe]``
installed next to Ray 2.60) and prints a table of seconds (lower is better).
Every backend gets two CPUs: ``init(num_cpus=2)`` for ember and Ray,
``num_workers=2`` for threads, ``LocalCluster(n_workers=2, threads_per_worker=1)``
for distributed (which needs ``pip install distributed``).

Workloads (each the median of ``REPS`` runs after one warm-up):

- ``array_reduce_s``: ``(x + x.T).mean(axis=0).sum()`` over a 6000x6000 float64
  array in 500x500 chunks (288 MB, 144 chunks, ~600 tasks);
- ``dataframe_groupby_s``: a 4M-row, 16-partition frame, ``groupby(k).agg``
  of sum/mean/max over 1000 keys (tree reduction);
- ``dataframe_shuffle_s``: the same frame shuffled on ``k`` into 16 partitions
  (the task-based shuffle), then ``len`` of each partition;
- ``bag_wordcount_s``: 400k lines of 10 words from a 5000-word vocabulary in
  32 partitions, ``str.split().flatten().frequencies()``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

REPS = 3
BACKENDS = ("ember", "ray", "threads", "distributed")


def _array(da: Any, quick: bool) -> Callable[[], Any]:
    n, c = (2000, 500) if quick else (6000, 500)
    x = da.random.default_rng(0).random((n, n), chunks=(c, c))
    expr = (x + x.T).mean(axis=0).sum()
    return lambda: expr


def _frame(dd: Any, quick: bool) -> Any:
    import numpy as np
    import pandas as pd

    rows = 400_000 if quick else 4_000_000
    rng = np.random.default_rng(1)
    pdf = pd.DataFrame(
        {"k": rng.integers(0, 1000, rows), "v": rng.random(rows), "w": rng.random(rows)}
    )
    return dd.from_pandas(pdf, npartitions=16)


def _bag(db: Any, quick: bool) -> Any:
    import numpy as np

    lines = 40_000 if quick else 400_000
    rng = np.random.default_rng(2)
    vocab = [f"w{i}" for i in range(5000)]
    words = rng.integers(0, len(vocab), (lines, 10))
    text = [" ".join(vocab[j] for j in row) for row in words]
    return db.from_sequence(text, npartitions=32).str.split().flatten().frequencies()


def run_backend(backend: str, quick: bool) -> dict[str, Any]:
    import dask
    import dask.array as da
    import dask.bag as db
    import dask.dataframe as dd

    scheduler, close = _scheduler(backend)
    frame = _frame(dd, quick)
    workloads = {
        "array_reduce_s": _array(da, quick)(),
        "dataframe_groupby_s": frame.groupby("k").agg(
            {"v": "sum", "w": ["mean", "max"]}
        ),
        "dataframe_shuffle_s": frame.shuffle("k", npartitions=16).map_partitions(len),
        "bag_wordcount_s": _bag(db, quick),
    }
    out: dict[str, Any] = {"backend": backend, "quick": quick}
    try:
        with dask.config.set({"dataframe.shuffle.method": "tasks"}):
            for name, coll in workloads.items():
                try:
                    coll.compute(scheduler=scheduler)  # warm-up (imports, workers)
                    samples = []
                    for _ in range(REPS):
                        t0 = time.perf_counter()
                        coll.compute(scheduler=scheduler)
                        samples.append(time.perf_counter() - t0)
                    out[name] = {
                        "value": statistics.median(samples),
                        "samples": samples,
                    }
                except Exception as exc:
                    out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        close()
    return out


def _scheduler(backend: str) -> tuple[Any, Callable[[], None]]:
    if backend == "threads":
        from functools import partial

        import dask.threaded

        return partial(dask.threaded.get, num_workers=2), lambda: None
    if backend == "distributed":
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True)
        client = Client(cluster)

        def close() -> None:
            client.close()
            cluster.close()

        return client.get, close
    if backend == "ember":
        import ember as ray
        from ember.util.dask import ray_dask_get
    elif backend == "ray":
        import ray  # type: ignore[no-redef]
        from ray.util.dask import ray_dask_get  # type: ignore[no-redef]
    else:
        raise SystemExit(f"unknown backend {backend!r}; one of {', '.join(BACKENDS)}")
    ray.init(num_cpus=2)
    return ray_dask_get, ray.shutdown


def run_all(ray_python: str, quick: bool) -> list[dict[str, Any]]:
    here = os.path.abspath(__file__)
    src = os.path.join(os.path.dirname(os.path.dirname(here)), "src")
    results = []
    for backend in BACKENDS:
        python = ray_python if backend == "ray" else sys.executable
        env = dict(os.environ)
        if backend == "ember":
            env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        cmd = [python, here, "--backend", backend, *(["--quick"] if quick else [])]
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=3600
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("DASKBENCH ")]
        if proc.returncode != 0 or not lines:
            results.append({"backend": backend, "error": proc.stderr[-2000:]})
        else:
            results.append(json.loads(lines[-1][len("DASKBENCH ") :]))
    return results


def markdown(results: list[dict[str, Any]]) -> str:
    names = [
        "array_reduce_s",
        "dataframe_groupby_s",
        "dataframe_shuffle_s",
        "bag_wordcount_s",
    ]
    head = (
        "| workload (s, lower is better) | "
        + " | ".join(r["backend"] for r in results)
        + " |"
    )
    rows = [head, "|" + "---|" * (len(results) + 1)]
    for name in names:
        cells = []
        for r in results:
            fig = r.get(name, {})
            cells.append(f"{fig['value']:.2f}" if "value" in fig else "ERR")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=BACKENDS)
    p.add_argument("--all", action="store_true")
    p.add_argument("--ray-python", default="/tmp/ray-venv/bin/python")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json")
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args()
    if args.all:
        results = run_all(args.ray_python, args.quick)
    elif args.backend:
        results = [run_backend(args.backend, args.quick)]
        print("DASKBENCH " + json.dumps(results[0]))
    else:
        p.error("give --backend or --all")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    if args.markdown:
        print(markdown(results))


if __name__ == "__main__":
    main()
