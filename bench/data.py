"""Data benchmark: map_batches throughput over Parquet, and peak memory of a dataset 5x the store.

Runs ember and Ray 2.60 (in /tmp/ray-venv, via a shim that makes `import ember as ray`
resolve to Ray) in the same invocation, each in its own subprocess, and prints a table
with the machine's ceilings (reading the Parquet files' bytes, memcpy).

    python bench/data.py                      # small: 64 MB of Parquet, 96 MB store
    python bench/data.py --size-mb 2048       # the issue's 2 GB
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

MB = 1024 * 1024
RAY_PYTHON = "/tmp/ray-venv/bin/python"
RAY_SHIM = "/tmp/gen-shim"


def make_parquet(folder: str, size_mb: int, files: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = size_mb * MB // 16 // files  # two float64 columns
    rng = np.random.default_rng(0)
    for i in range(files):
        t = pa.table({"x": rng.random(rows), "y": rng.random(rows)})
        pq.write_table(
            t, os.path.join(folder, f"part-{i:04d}.parquet"), compression="none"
        )


def ceilings(folder: str) -> dict[str, float]:
    import numpy as np

    total = 0
    start = time.perf_counter()
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as f:
            while chunk := f.read(8 * MB):
                total += len(chunk)
    read_s = time.perf_counter() - start
    a = np.ones(256 * MB // 8)
    start = time.perf_counter()
    for _ in range(4):
        a.copy()
    copy_s = (time.perf_counter() - start) / 4
    return {"disk_read_mb_s": total / MB / read_s, "memcpy_mb_s": 256 / copy_s}


class _Peak:
    """Samples the driver's RSS and /dev/shm use (the store) in a thread."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self._shm0 = shutil.disk_usage("/dev/shm").used
        self.rss = 0
        self.shm = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.rss = max(self.rss, self._proc.memory_info().rss)
            self.shm = max(self.shm, shutil.disk_usage("/dev/shm").used - self._shm0)

    def stop(self) -> None:
        self._stop.set()
        self._t.join()


def run_engine(mode: str, folder: str, store_mb: int) -> dict[str, float]:
    import numpy as np

    import ember as ray

    ray.init(num_cpus=2, object_store_memory=store_mb * MB, include_dashboard=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    out: dict[str, float] = {}
    try:
        if mode == "throughput":
            ds = ray.data.read_parquet(folder).map_batches(
                lambda b: {"x": b["x"] * 2, "y": b["y"]}
            )
            start = time.perf_counter()
            nbytes = 0
            for batch in ds.iter_batches(batch_size=None):
                nbytes += batch["x"].nbytes + batch["y"].nbytes
            out["seconds"] = time.perf_counter() - start
            out["mb_s"] = nbytes / MB / out["seconds"]
        else:
            rows = 5 * store_mb  # 1 MB per row: 5x the store
            peak = _Peak()
            ds = ray.data.range(
                rows, override_num_blocks=max(10, rows // 4)
            ).map_batches(
                lambda b: {
                    "id": b["id"],
                    "p": np.ones((len(b["id"]), MB), dtype=np.uint8),
                }
            )
            start = time.perf_counter()
            seen = 0
            for batch in ds.iter_batches(batch_size=4):
                seen += len(batch["id"])
            out["seconds"] = time.perf_counter() - start
            peak.stop()
            assert seen == rows, (seen, rows)
            out["driver_peak_mb"] = peak.rss / MB
            out["store_peak_mb"] = peak.shm / MB
            out["dataset_mb"] = rows
    finally:
        ray.shutdown()
    return out


def _child(
    engine: str, mode: str, folder: str, store_mb: int
) -> dict[str, float] | str:
    env = dict(os.environ)
    if engine == "ray":
        python = RAY_PYTHON
        env["PYTHONPATH"] = RAY_SHIM
    else:
        python = sys.executable
    cmd = [
        python,
        os.path.abspath(__file__),
        "--child",
        mode,
        "--folder",
        folder,
        "--store-mb",
        str(store_mb),
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=3600, check=False
    )
    for line in proc.stdout.splitlines()[::-1]:
        if line.startswith("{"):
            return json.loads(line)
    return f"failed (rc={proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--size-mb", type=int, default=64, help="Parquet data for the throughput run"
    )
    p.add_argument(
        "--store-mb",
        type=int,
        default=96,
        help="object store size, >= 75 for Ray (the streaming run uses 5x)",
    )
    p.add_argument("--files", type=int, default=8)
    p.add_argument("--engines", default="ember,ray")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(run_engine(args.child, args.folder, args.store_mb)))
        return
    folder = tempfile.mkdtemp(prefix="data-bench-")
    try:
        make_parquet(folder, args.size_mb, args.files)
        ceil = ceilings(folder)
        results = {}
        for engine in args.engines.split(","):
            for mode in ("throughput", "stream"):
                store = (
                    max(args.store_mb, 2 * args.size_mb)
                    if mode == "throughput"
                    else args.store_mb
                )
                results[(engine, mode)] = _child(engine, mode, folder, store)
        print(
            f"\nember.data benchmark: {args.size_mb} MB Parquet ({args.files} files), store {args.store_mb} MB"
        )
        print(
            f"machine ceiling: file read {ceil['disk_read_mb_s']:.0f} MB/s (page cache), memcpy {ceil['memcpy_mb_s']:.0f} MB/s\n"
        )
        print(
            f"{'engine':<8}{'map_batches MB/s':>18}{'stream 5x s':>14}{'driver peak MB':>16}{'store peak MB':>15}"
        )
        for engine in args.engines.split(","):
            t, s = results[(engine, "throughput")], results[(engine, "stream")]
            if isinstance(t, str) or isinstance(s, str):
                print(
                    f"{engine:<8} {t if isinstance(t, str) else ''} {s if isinstance(s, str) else ''}"
                )
                continue
            print(
                f"{engine:<8}{t['mb_s']:>18.1f}{s['seconds']:>14.2f}{s['driver_peak_mb']:>16.0f}{s['store_peak_mb']:>15.0f}"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
