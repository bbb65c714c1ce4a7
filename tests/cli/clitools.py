"""Running ``ember`` commands in tests and finding the daemons they left running."""

from __future__ import annotations

import glob
import os
import subprocess
import sys

import psutil

from ember.common import session

STORE = str(100 * 1024 * 1024)


def ember_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60):
    return subprocess.run(
        [sys.executable, "-m", "ember.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def _recorded_pids() -> set[int]:
    """Pids of the recorded daemons and everything they started."""
    pids: set[int] = set()
    for rec in session.list_session_records():
        for p in rec["processes"]:
            pids.add(p["pid"])
            try:
                pids.update(c.pid for c in psutil.Process(p["pid"]).children(True))
            except psutil.NoSuchProcess:
                pass
    return pids


def _alive(pids: set[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def _arenas(root: str) -> list[str]:
    names = [os.path.basename(p) for p in glob.glob(f"{root}/ember-*/session_*")]
    return [f for n in names for f in glob.glob(f"/dev/shm/ember-{n}-*")]


def start_head(cpus: int = 2, *extra: str) -> str:
    out = ember_cli(
        "start", "--head", "--port", "0", "--node-ip-address", "127.0.0.1",
        "--num-cpus", str(cpus), "--object-store-memory", STORE, *extra,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "ember start --address='127.0.0.1:" in out.stdout
    assert 'ember.init(address="auto")' in out.stdout
    rec = session.read_cluster_record()
    assert rec is not None
    return str(rec["control_address"]).removeprefix("tcp:")
