"""ember.data's all-to-all operations against Ray Data 2.60: groupby-aggregate, full sort, random shuffle.

Usage::

    python bench/data_ops.py [--mb 64] [--blocks 16] [--groups 1000]
                             [--ray-python /tmp/ray-venv/bin/python] [--json out.json]

One invocation measures both systems on the same synthetic table (an int64 key
with ``--groups`` distinct values and two float64 columns, ``--mb`` megabytes in
``--blocks`` blocks put in the object store): ember here (the
``ember.data._alltoall`` functions over the block refs), Ray in a subprocess
(the same blocks through ``ray.data.from_arrow_refs``, each result
materialized). Both start a 2-CPU local cluster with an object store of four
times the data. The machine ceiling is one single-threaded memcpy of the same
bytes. Figures are seconds (lower is better) and the data size over that time.
Each side first runs a tiny groupby and shuffle so worker start-up is not timed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve()
OPS = ("groupby_sum", "sort", "random_shuffle")


def make_table(mb: int, groups: int, seed: int = 0) -> Any:
    import pyarrow as pa

    rows = max(1, mb * 1024 * 1024 // 24)
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "key": rng.integers(0, groups, rows),
            "value": rng.random(rows),
            "other": rng.random(rows),
        }
    )


def split(table: Any, blocks: int) -> list[Any]:
    n = table.num_rows
    bounds = [(i * n) // blocks for i in range(blocks + 1)]
    return [table.slice(a, b - a) for a, b in itertools.pairwise(bounds)]


def memcpy_ceiling(nbytes: int) -> float:
    src = np.ones(nbytes // 8, dtype=np.float64)
    dst = np.empty_like(src)
    start = time.perf_counter()
    np.copyto(dst, src)
    return time.perf_counter() - start


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_ember(args: argparse.Namespace) -> dict[str, float]:
    import ember
    from ember.data import _alltoall
    from ember.data.aggregate import Sum

    table = make_table(args.mb, args.groups)
    ember.init(num_cpus=2, object_store_memory=max(4 * table.nbytes, 256 << 20))
    try:
        refs = [ember.put(b) for b in split(table, args.blocks)]
        del table

        def done(out: list[Any]) -> None:
            ember.wait(out, num_returns=len(out), fetch_local=False)

        # start the workers and load the task functions before timing
        warm = [ember.put(b) for b in split(make_table(1, 10, seed=1), 2)]
        done(_alltoall.aggregate(warm, ["key"], [Sum("value")]))
        done(_alltoall.random_shuffle(warm, seed=1, num_blocks=None))

        return {
            "groupby_sum": _timed(
                lambda: done(_alltoall.aggregate(refs, ["key"], [Sum("value")]))
            ),
            "sort": _timed(lambda: done(_alltoall.sort(refs, "value"))),
            "random_shuffle": _timed(
                lambda: done(_alltoall.random_shuffle(refs, seed=1, num_blocks=None))
            ),
        }
    finally:
        ember.shutdown()


def run_ray(args: argparse.Namespace) -> dict[str, float]:
    import ray

    table = make_table(args.mb, args.groups)
    ray.init(
        num_cpus=2,
        object_store_memory=max(4 * table.nbytes, 256 << 20),
        include_dashboard=False,
        log_to_driver=False,
    )
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        refs = [ray.put(b) for b in split(table, args.blocks)]
        del table
        ds = ray.data.from_arrow_refs(refs)
        # start the workers before timing
        warm = ray.data.from_arrow_refs(
            [ray.put(b) for b in split(make_table(1, 10, 1), 2)]
        )
        warm.groupby("key").sum("value").materialize()
        warm.random_shuffle(seed=1).materialize()
        return {
            "groupby_sum": _timed(lambda: ds.groupby("key").sum("value").materialize()),
            "sort": _timed(lambda: ds.sort("value").materialize()),
            "random_shuffle": _timed(lambda: ds.random_shuffle(seed=1).materialize()),
        }
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mb",
        type=int,
        default=64,
        help="data size in MiB (1024 for the issue's 1 GB)",
    )
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--ray-python", default="/tmp/ray-venv/bin/python")
    parser.add_argument("--backend", choices=["ember", "ray"], help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    if args.backend == "ember":
        print(json.dumps(run_ember(args)))
        return
    if args.backend == "ray":
        print(json.dumps(run_ray(args)))
        return

    common = [
        "--mb",
        str(args.mb),
        "--blocks",
        str(args.blocks),
        "--groups",
        str(args.groups),
    ]
    results: dict[str, dict[str, float] | None] = {}
    for name, python in (("ember", sys.executable), ("ray", args.ray_python)):
        if not os.path.exists(python):
            print(f"{name}: {python} not found, skipped", file=sys.stderr)
            results[name] = None
            continue
        cmd = [python, str(HERE), "--backend", name, *common]
        env = dict(os.environ)
        if name == "ray":
            env.pop("PYTHONPATH", None)
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if out.returncode != 0:
            print(f"{name} failed:\n{out.stderr[-3000:]}", file=sys.stderr)
            results[name] = None
            continue
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    nbytes = max(1, args.mb * 1024 * 1024 // 24) * 24
    ceiling = memcpy_ceiling(nbytes)

    def cell(res: dict[str, float] | None, op: str) -> str:
        if res is None:
            return "-"
        s = res[op]
        return f"{s:8.2f} s {nbytes / s / 1e6:7.1f} MB/s"

    print(
        f"data: {nbytes / 1e6:.0f} MB in {args.blocks} blocks, {args.groups} groups; 2 CPUs"
    )
    print(f"{'operation':<16}{'ember':>22}{'ray 2.60':>22}")
    for op in OPS:
        print(f"{op:<16}{cell(results['ember'], op):>22}{cell(results['ray'], op):>22}")
    print(
        f"{'memcpy ceiling':<16}{ceiling:8.2f} s {nbytes / ceiling / 1e9:6.2f} GB/s (one thread)"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"bytes": nbytes, "memcpy_s": ceiling, **results}, indent=2)
        )


if __name__ == "__main__":
    main()
