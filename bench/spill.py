"""Spill and restore throughput, next to the disk's own direct-I/O speed in the same folder.

Run by ``bench/workloads.py`` in a fresh subprocess per backend (the session
needs a small object store and a spill folder of its own)::

    python bench/spill.py --backend {ember,ray} --folder DIR [--quick]

It prints one ``SPILL {json}`` line with four figures (GB/s, decimal):

- ``disk_write_gbps`` / ``disk_read_gbps``: 8 MiB blocks written and read
  back with ``O_DIRECT`` (page cache bypassed), as ``dd oflag=direct`` does;
  where the file system refuses ``O_DIRECT`` (tmpfs), buffered I/O with an
  ``fsync`` and a ``POSIX_FADV_DONTNEED`` before the read, said in the note;
- ``spill_gbps``: ``put`` of objects totalling 3x the object store; every byte
  beyond the store's capacity must go to disk, so the figure is those bytes
  over the time of the puts (the puts' own copies are included: this is what
  a program that overfills its store sees);
- ``restore_gbps``: ``get`` of every object in put order (the oldest were
  spilled first) with one byte read per page, bytes read back over time.

The same code runs on both backends; the spill folder is set through Ray's
``object_spilling_config`` spelling, which ember accepts too.
"""

from __future__ import annotations

import argparse
import importlib
import json
import mmap
import os
import shutil
import sys
import time
from typing import Any

import numpy as np

MiB = 1024**2
GB = 1e9
BLOCK = 8 * MiB


def _direct_io(folder: str, nbytes: int) -> tuple[float, float, str]:
    """(write GB/s, read GB/s, note) of ``nbytes`` in ``folder``."""
    path = os.path.join(folder, "disk-probe")
    buf = mmap.mmap(-1, BLOCK)  # page-aligned, as O_DIRECT needs
    buf.write(os.urandom(1024) * (BLOCK // 1024))
    direct = getattr(os, "O_DIRECT", 0)
    note = "O_DIRECT, 8 MiB blocks"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | direct, 0o600)
    except OSError:
        direct, note = 0, "buffered + fsync (the file system refuses O_DIRECT)"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        t0 = time.perf_counter()
        for off in range(0, nbytes, BLOCK):
            os.pwritev(fd, [buf], off)
        os.fsync(fd)
        write_s = time.perf_counter() - t0
    finally:
        os.close(fd)
    fd = os.open(path, os.O_RDONLY | direct)
    try:
        if not direct:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        t0 = time.perf_counter()
        for off in range(0, nbytes, BLOCK):
            os.preadv(fd, [buf], off)
        read_s = time.perf_counter() - t0
    finally:
        os.close(fd)
        os.unlink(path)
    return nbytes / GB / write_s, nbytes / GB / read_s, note


def _spill_and_restore(
    ray: Any, folder: str, store: int, obj: int
) -> tuple[float, float, int]:
    config = {"type": "filesystem", "params": {"directory_path": folder}}
    ray.init(
        num_cpus=1,
        object_store_memory=store,
        _system_config={"object_spilling_config": json.dumps(config)},
    )
    try:
        count = 3 * store // obj
        src = np.ones(obj, dtype=np.uint8)
        ray.put(src)  # warm-up: workers, mappings
        t0 = time.perf_counter()
        refs = [ray.put(src) for _ in range(count)]
        put_s = time.perf_counter() - t0
        spilled = count * obj - store
        t0 = time.perf_counter()
        total = 0
        for ref in refs:
            a = ray.get(ref)
            total += int(a[::4096].sum())  # touch every page
            del a
        get_s = time.perf_counter() - t0
        assert total == count * len(range(0, obj, 4096))
        del refs
    finally:
        ray.shutdown()
    return spilled / GB / put_s, count * obj / GB / get_s, count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", choices=["ember", "ray"], required=True)
    ap.add_argument("--folder", required=True, help="spill here (and probe the disk)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, smoke test")
    args = ap.parse_args(argv)
    store, obj, probe = (
        (128 * MiB, 8 * MiB, 64 * MiB)
        if args.quick
        else (1024 * MiB, 64 * MiB, 1024 * MiB)
    )
    os.makedirs(args.folder, mode=0o700, exist_ok=True)
    try:
        w, r, disk_note = _direct_io(args.folder, probe)
        ray = importlib.import_module(args.backend)
        spill, restore, count = _spill_and_restore(ray, args.folder, store, obj)
    finally:
        shutil.rmtree(args.folder, ignore_errors=True)
    where = f"in {args.folder}"
    out = {
        "disk_write_gbps": (w, f"{probe // MiB} MiB written, {disk_note}, {where}"),
        "disk_read_gbps": (r, f"{probe // MiB} MiB read back, {disk_note}, {where}"),
        "spill_gbps": (
            spill,
            f"{count} puts of {obj // MiB} MiB into a {store // MiB} MiB store: bytes "
            "beyond the store over the time of the puts",
        ),
        "restore_gbps": (
            restore,
            f"get of the {count} objects in put order, one byte read per page",
        ),
    }
    print("SPILL " + json.dumps(out))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
