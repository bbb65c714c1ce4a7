"""A job's entrypoint as a process: its environment, its start, its group's signals.

The entrypoint runs as ``/bin/sh -c ENTRYPOINT`` in a session (and process
group) of its own, so a stop reaches every process it started; it gets
SIGKILL if the job server dies (``PR_SET_PDEATHSIG``, set in the child
before exec: the server starts it from its event-loop thread, which lives as
long as the server). Its output (stdout and stderr) goes to
``<session>/logs/job-driver-<submission id>.log`` (0600).

Its environment is the server's plus: ``EMBER_ADDRESS`` / ``RAY_ADDRESS``
(the control service, so that the entrypoint's ``ember.init()`` joins the
cluster), ``EMBER_AUTH_TOKEN``, ``EMBER_JOB_CONFIG_JSON`` (the job's
runtime_env and metadata; ``ember.init()`` makes that runtime_env the
driver's job env, as Ray's ``RAY_JOB_CONFIG_JSON_ENV_VAR``), the
runtime_env's ``env_vars``, ``PYTHONPATH`` with its unpacked ``py_modules``,
``PYTHONUNBUFFERED=1`` and ``EMBER_JOB_SUBMISSION_ID``.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
from typing import Any

import psutil

from ember.common.private_files import open_private_log
from ember.runtime_env.job_env import JOB_CONFIG_ENV

SUBMISSION_ENV = "EMBER_JOB_SUBMISSION_ID"
#: variables of the server's own process that must not reach a job
_DROP = ("EMBER_DIE_WITH_PARENT", "EMBER_READY_FD")


def log_path(session_dir: str, submission_id: str) -> str:
    return os.path.join(session_dir, "logs", f"job-driver-{submission_id}.log")


def driver_env(
    base: dict[str, str],
    *,
    control_address: str,
    token: str,
    submission_id: str,
    runtime_env: dict[str, Any],
    metadata: dict[str, str],
    module_paths: list[str],
) -> dict[str, str]:
    """The environment of a job's entrypoint (see the module docstring)."""
    env = {k: v for k, v in base.items() if k not in _DROP}
    env.update({str(k): str(v) for k, v in (runtime_env.get("env_vars") or {}).items()})
    env["EMBER_ADDRESS"] = env["RAY_ADDRESS"] = control_address
    env["EMBER_AUTH_TOKEN"] = token
    env[JOB_CONFIG_ENV] = json.dumps({"runtime_env": runtime_env, "metadata": metadata})
    env[SUBMISSION_ENV] = submission_id
    env["PYTHONUNBUFFERED"] = "1"
    if module_paths:
        old = env.get("PYTHONPATH", "")
        env["PYTHONPATH"] = os.pathsep.join([*module_paths, *([old] if old else [])])
    return env


def _die_with_server() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


def spawn(
    entrypoint: str, env: dict[str, str], cwd: str, log: str
) -> subprocess.Popen[bytes]:
    """Start ``entrypoint`` (call from the server's event-loop thread)."""
    fd = open_private_log(log)
    try:
        return subprocess.Popen(
            ["/bin/sh", "-c", entrypoint],
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_server,
        )
    finally:
        os.close(fd)


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to the process group ``pgid``; whether any member was there."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def is_our_job(pid: int, submission_id: str) -> bool:
    """Whether ``pid`` still runs the entrypoint of ``submission_id`` (not a reused pid)."""
    try:
        proc = psutil.Process(pid)
        return proc.environ().get(SUBMISSION_ENV) == submission_id
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def read_tail(path: str, limit: int = 20_000) -> str:
    """The last ``limit`` characters of a log ("" if there is none)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode(errors="replace")
    except OSError:
        return ""
