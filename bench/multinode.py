"""Start and stop a 2-node cluster on this machine through each backend's CLI.

Used by ``run.py`` for the ``mn_*`` figures (see ``workloads.py``).  For both
backends the cluster is the same:

* a head node:    ``<cli> start --head --port P --num-cpus 1 ...``
* a joined node:  ``<cli> start --address 127.0.0.1:P --num-cpus 1
  --resources '{"far": 1}' ...``

both with ``--node-ip-address 127.0.0.1 --object-store-memory 4 GiB``; the
driver (``workloads.py --multinode``) attaches with ``init(address="auto")``.

ember runs with a private ``HOME`` and ``TMPDIR`` (a temp folder removed at the
end), so nothing touches the real ``~/.ember``; the joined node gets the head's
token with ``--token``.  Ray uses its default temp dir (``/tmp/ray``) and
``RAY_AUTH_MODE=token`` for every Ray process: Ray 2.60's head turns token
authentication on by default, but ``ray start --address`` and ``ray status``
only send the token when that variable says so (without it the join fails
with ``InvalidAuthToken``).

:func:`cluster` always stops what it started (``ember stop --force`` /
``ray stop --force``), then, for ember, SIGKILLs any process still carrying the
private ``TMPDIR`` in its environment and reports it as a leftover.

Stand-alone use (debugging)::

    python bench/multinode.py --backend ember   # start, print status, stop
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GiB = 1024**3
STORE_BYTES = 4 * GiB
CLI_TIMEOUT_S = 120.0
EMBER_CLI = "import sys; from ember.cli.main import main; sys.argv[0] = 'ember'; main()"


# The mn_* figures (implemented in workloads.py) and their per-figure watchdog
# timeouts in seconds; the 1 GiB ones move 4-5 GiB each.
FIGURES: dict[str, float] = {
    "mn_far_to_head_10mb_gbps": 120,
    "mn_far_to_head_100mb_gbps": 120,
    "mn_far_to_head_1gb_gbps": 240,
    "mn_head_to_far_10mb_gbps": 120,
    "mn_head_to_far_100mb_gbps": 120,
    "mn_head_to_far_1gb_gbps": 240,
    "mn_tasks_sync": 90,
    "mn_tasks_async": 90,
    "mn_actor_calls_sync": 90,
    "mn_actor_calls_async": 90,
}


class ClusterError(RuntimeError):
    """A cluster could not be started."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(text: str, n: int = 6, width: int = 300) -> str:
    lines = [ln.strip()[:width] for ln in (text or "").splitlines() if ln.strip()]
    return " | ".join(lines[-n:])


class Cluster:
    """One backend's 2-node cluster; ``env`` is what the driver must run with."""

    def __init__(self, backend: str, python: str) -> None:
        self.backend = backend
        self.python = python
        self.port = free_port()
        self.tmp: str | None = None
        self.log: list[dict[str, Any]] = []
        env = dict(os.environ)
        if backend == "ember":
            self.tmp = tempfile.mkdtemp(prefix="bench-mn-ember-")
            for k in ("EMBER_ADDRESS", "EMBER_AUTH_TOKEN"):
                env.pop(k, None)
            env.update(HOME=self.tmp, TMPDIR=self.tmp)
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p
            )
            self.cli = [python, "-c", EMBER_CLI]
        elif backend == "ray":
            env.pop("RAY_ADDRESS", None)
            env.update(RAY_AUTH_MODE="token", RAY_USAGE_STATS_ENABLED="0")
            self.cli = [str(Path(python).parent / "ray")]
        else:
            raise ValueError(backend)
        self.env = env

    # -- CLI ---------------------------------------------------------------- #

    def _cli(self, *args: str, check: bool = True) -> str:
        cmd = [*self.cli, *args]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=CLI_TIMEOUT_S,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except OSError as exc:
            self.log.append({"cmd": args[:1], "rc": f"{type(exc).__name__}"})
            raise ClusterError(f"cannot run {cmd[0]}: {exc}") from exc
        except subprocess.TimeoutExpired as exc:
            self.log.append({"cmd": args, "rc": "timeout"})
            raise ClusterError(
                f"`{self.backend} {' '.join(args)}` timed out after {CLI_TIMEOUT_S} s"
            ) from exc
        out = (proc.stdout or "") + (proc.stderr or "")
        self.log.append(
            {
                "cmd": [
                    "***" if i and args[i - 1] == "--token" else a
                    for i, a in enumerate(args)
                ],
                "rc": proc.returncode,
                "s": round(time.perf_counter() - t0, 2),
            }
        )
        if check and proc.returncode != 0:
            raise ClusterError(
                f"`{self.backend} {' '.join(args)}` exited {proc.returncode}: "
                f"{_tail(out)}"
            )
        return out

    def start(self) -> None:
        common = [
            "--num-cpus",
            "1",
            "--node-ip-address",
            "127.0.0.1",
            "--object-store-memory",
            str(STORE_BYTES),
        ]
        self._cli("start", "--head", "--port", str(self.port), *common)
        join = [
            "start",
            "--address",
            f"127.0.0.1:{self.port}",
            "--resources",
            json.dumps({"far": 1}),
            *common,
        ]
        # ember finds the head's token itself (its token file / cluster record on
        # this machine): a token on the command line would be visible in ps.
        self._cli(*join)

    def stop(self) -> dict[str, Any]:
        """Stop everything; never raises.  Returns a note for the JSON."""
        note: dict[str, Any] = {}
        try:
            out = self._cli("stop", "--force", check=False)
            note["stop"] = _tail(out, 1)
        except ClusterError as exc:
            note["stop_error"] = str(exc)
        if self.backend == "ember" and self.tmp:
            left = _kill_by_env("TMPDIR", self.tmp)
            if left:
                note["leftovers_killed"] = left
            shutil.rmtree(self.tmp, ignore_errors=True)
        note["cli"] = self.log
        return note


def _kill_by_env(key: str, value: str) -> list[str]:
    """SIGKILL our processes whose environment has ``key=value``."""
    try:
        import psutil
    except ImportError:  # pragma: no cover
        return []
    killed = []
    me = os.getpid()
    for p in psutil.process_iter(["pid", "cmdline"]):
        if p.pid == me:
            continue
        try:
            if p.environ().get(key) != value:
                continue
            killed.append(f"{p.pid} {' '.join(p.info['cmdline'] or [])[:100]}")
            os.kill(p.pid, signal.SIGKILL)
        except (psutil.Error, OSError):
            continue
    return killed


@contextlib.contextmanager
def cluster(backend: str, python: str) -> Iterator[tuple[Cluster, dict[str, Any]]]:
    """Start the cluster, yield ``(cluster, note)``; always stop it on exit.

    ``note`` is filled with the stop result (and leftovers) after the block.
    Raises :class:`ClusterError` (after cleaning up) if the start fails.
    """
    c = Cluster(backend, python)
    note: dict[str, Any] = {}
    try:
        c.start()
        yield c, note
    finally:
        note.update(c.stop())


def main() -> int:
    ap = argparse.ArgumentParser(description="start a 2-node cluster, show it, stop")
    ap.add_argument("--backend", choices=["ember", "ray"], required=True)
    ap.add_argument("--python", default=None)
    args = ap.parse_args()
    python = args.python or (
        sys.executable if args.backend == "ember" else "/tmp/ray-venv/bin/python"
    )
    with cluster(args.backend, python) as (c, note):
        print(c._cli("status", check=False))
    print(json.dumps(note, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
