"""Helpers for tests that start daemons with the ``ember`` command line.

Daemons started by ``ember start`` run in their own session, so they are not
children of the test process and conftest's leak check does not see them.
Every such test gives the daemons a private root folder (HOME and TMPDIR
under it); :func:`processes_under` finds every process whose HOME or TMPDIR
lies in that root (the daemons, their workers, drivers), and
:func:`stop_everything_under` stops them by pid and waits until none is left.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import psutil

CLI = [sys.executable, "-m", "ember.cli.main"]


def wait_until(predicate, timeout_s: float, interval_s: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout_s`` passed (no fixed sleep)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())


def make_root(prefix: str) -> str:
    """A private folder (short: unix socket paths must fit) with ``home/`` inside."""
    root = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.makedirs(os.path.join(root, "home"))
    return root


def env_for(root: str, **extra: str) -> dict[str, str]:
    """The environment of a process that keeps its ember state under ``root``."""
    env = dict(os.environ)
    for var in ("EMBER_AUTH_TOKEN", "EMBER_ADDRESS", "RAY_ADDRESS", "XDG_RUNTIME_DIR"):
        env.pop(var, None)
    env["HOME"] = os.path.join(root, "home")
    env["TMPDIR"] = root
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def processes_under(root: str) -> list[psutil.Process]:
    """Live processes whose HOME or TMPDIR is inside ``root`` (zombies excluded)."""
    root = root.rstrip("/") + "/"
    me = os.getpid()
    out = []
    for p in psutil.process_iter():
        if p.pid == me:
            continue
        try:
            env = p.environ()
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if any((env.get(var, "") + "/").startswith(root) for var in ("HOME", "TMPDIR")):
            out.append(p)
    return out


def arenas_under(root: str) -> list[str]:
    """Shared-memory arenas of the sessions whose folders are in ``root``."""
    names = [
        os.path.basename(p) for p in glob.glob(f"{root}/**/session_*", recursive=True)
    ]
    return [f for n in names for f in glob.glob(f"/dev/shm/ember-{n}-*")]


def stop_everything_under(root: str, *, netns: str | None = None) -> list[str]:
    """``ember stop --force`` for ``root``, then SIGKILL what is left there, by pid.

    Returns a description of the processes that were still running after
    ``ember stop`` (the caller decides whether that is a failure) and raises
    if any survives SIGKILL.
    """
    prefix = ["ip", "netns", "exec", netns] if netns else []
    try:
        subprocess.run(
            [*prefix, *CLI, "stop", "--force"],
            env=env_for(root),
            capture_output=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pass
    wait_until(lambda: not processes_under(root), 15)
    survivors = []
    for p in processes_under(root):
        try:
            survivors.append(" ".join(p.cmdline()[:3]))
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    if not wait_until(lambda: not processes_under(root), 15):
        raise AssertionError(
            f"processes under {root} survive SIGKILL: {processes_under(root)}"
        )
    return survivors


def remove_root(root: str) -> list[str]:
    """Delete ``root`` and any arena its sessions left; return those arenas."""
    leaked = arenas_under(root)
    for f in leaked:
        try:
            os.unlink(f)
        except OSError:
            pass
    shutil.rmtree(root, ignore_errors=True)
    return leaked


def clean_up(*roots: str, survivors_ok: bool = False) -> list[str]:
    """Stop every process under ``roots`` and remove them; what was left behind.

    The caller asserts the list is empty after its ``finally`` (so a failure of
    the test itself is not masked). ``survivors_ok``: processes that needed the
    forced stop are not counted (a test that killed daemons on purpose).
    """
    survivors = [s for r in roots for s in stop_everything_under(r)]
    stray = [p for r in roots for p in processes_under(r)]
    leaked = [f for r in roots for f in remove_root(r)]
    problems = (
        []
        if survivors_ok
        else [f"'ember stop --force' left {s} running" for s in survivors]
    )
    problems += [f"still running: {p}" for p in stray]
    problems += [f"shared-memory arena left behind: {f}" for f in leaked]
    return problems
