"""ember.util.collective: allreduce throughput between worker processes.

Usage::

    python bench/collective.py [--sizes-mb 1,16,64] [--world 2] [--iters 10]
                               [--json bench/results/collective.json]

``world`` actors (``num_cpus=0``) on the embedded local cluster allreduce a
float32 array of each size ``iters`` times after a warm-up; printed per size:
seconds per allreduce, the algorithm bandwidth (array bytes / time) and the
bus bandwidth (``2 (W-1) / W`` x bytes / time, what each rank moves), next
to the machine's ceiling for that motion: a single-threaded memcpy of the
same array (np.copyto), since on one node every byte crosses shared memory.
Ray 2.60's GLOO backend is torch.distributed's, which needs torch (not in the
comparison venv); its figure is left out and the report says so.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import ember  # noqa: E402
import ember.util.collective as col  # noqa: E402


def memcpy_gbps(nbytes: int, repeat: int = 5) -> float:
    src = np.ones(nbytes // 4, dtype=np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(repeat))
    return nbytes / best / 1e9


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@ember.remote(num_cpus=0)
class Rank:
    def __init__(self, world: int, rank: int) -> None:
        col.init_collective_group(world, rank, backend="gloo", group_name="bench")

    def run(self, nbytes: int, iters: int) -> float:
        x = np.ones(nbytes // 4, dtype=np.float32)
        col.allreduce(x, "bench")  # warm-up
        col.barrier("bench")
        t0 = time.perf_counter()
        for _ in range(iters):
            col.allreduce(x, "bench")
        return (time.perf_counter() - t0) / iters

    def close(self) -> None:
        col.destroy_collective_group("bench")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes-mb", default="1,16,64")
    ap.add_argument("--world", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--json", default=str(HERE / "results" / "collective.json"))
    args = ap.parse_args(argv)
    sizes = [int(float(s) * 2**20) for s in args.sizes_mb.split(",") if s]
    ceilings = {n: memcpy_gbps(n) for n in sizes}
    ember.init(num_cpus=2, include_dashboard=False)
    ranks = [Rank.remote(args.world, r) for r in range(args.world)]
    rows = []
    try:
        for n in sizes:
            t = max(ember.get([r.run.remote(n, args.iters) for r in ranks]))
            bus = 2 * (args.world - 1) / args.world * n / t / 1e9
            rows.append(
                {
                    "bytes": n,
                    "s_per_allreduce": t,
                    "algo_gbps": n / t / 1e9,
                    "bus_gbps": bus,
                    "memcpy_1t_gbps": ceilings[n],
                }
            )
        ember.get([r.close.remote() for r in ranks])
    finally:
        ember.shutdown()
    print(
        f"allreduce, {args.world} ranks on one node (ember GLOO over the object store)"
    )
    print("| size | s per allreduce | algo GB/s | bus GB/s | memcpy 1 thread GB/s |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['bytes'] / 2**20:g} MiB | {r['s_per_allreduce']:.4f} | "
            f"{r['algo_gbps']:.2f} | {r['bus_gbps']:.2f} | {r['memcpy_1t_gbps']:.2f} |"
        )
    print("Ray 2.60: its GLOO backend needs torch (not installed): not measured")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(
        json.dumps({"world": args.world, "rows": rows}, indent=1)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
