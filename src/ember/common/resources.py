"""Detecting a machine's resources: CPUs, GPUs, memory, object store size."""

from __future__ import annotations

import os
import shutil
import subprocess

import psutil


def detect_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def detect_gpus() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def default_object_store_bytes() -> int:
    """30% of system memory, no more than /dev/shm can hold."""
    total = psutil.virtual_memory().total
    want = int(total * 0.3)
    try:
        st = os.statvfs("/dev/shm")
        shm_free = st.f_bavail * st.f_frsize
        if shm_free > 0:
            want = min(want, int(shm_free * 0.9))
    except OSError:
        pass
    return max(want, 64 * 1024 * 1024)


def default_memory_bytes(object_store_bytes: int) -> int:
    avail = psutil.virtual_memory().available
    return max(int(avail * 0.7) - object_store_bytes, 0)
