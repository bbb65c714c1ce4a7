"""Start, record and stop the embedded local cluster (control service + one node daemon).

No second node can join this cluster, so nothing in it listens on TCP: the
control service, the node daemon, its workers and the drivers talk over unix
sockets in the session folder (0700), and the daemons' logs are 0600.  Other
drivers of this user on this machine find it through the cluster record
(:meth:`LocalCluster.record`, written by ``init()``): its ``unix:`` control
address and token.  The cluster lives as long as the driver that started it
(its owner): the daemons die with it, and the record then names dead pids.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ember.common import dashboard_launch, session
from ember.common.private_files import open_private_log
from ember.common.process import PARENT_ENV, TOKEN_ENV, read_ready_line
from ember.common.supervisor import ChildSupervisor

READY_TIMEOUT_S = 30.0


@dataclass
class LocalCluster:
    """Handles of the daemons this driver started."""

    session_dir: str
    token: str
    control_address: str = ""
    control_unix: str = ""
    node_unix: str = ""
    node_id: str = ""
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    #: the dashboard's supervisor, its thread and the listening socket (if started)
    dashboard: tuple[ChildSupervisor, threading.Thread, socket.socket] | None = None

    def record(self) -> dict[str, Any]:
        """The cluster record other drivers join it by (it holds the token: 0600)."""
        owner = os.getpid()
        names = ("control service", "node daemon")
        return {
            "kind": "embedded",
            "control_address": self.control_address,
            "token": self.token,
            "session_dir": self.session_dir,
            "pid": owner,
            "processes": [
                session.process_entry("driver", owner),
                *(
                    session.process_entry(name, p.pid)
                    for name, p in zip(names, self.procs, strict=False)
                ),
            ],
        }

    def start_dashboard(
        self, host: str, port: int | None, grafana_host: str = ""
    ) -> str:
        """Start the dashboard in the background (nothing waits for it); its ``host:port``.

        The port is bound here and kept by this process; a thread of it
        supervises the dashboard process (restarts it when it dies), so the
        embedded cluster needs no supervisor process of its own.

        Raises:
            DashboardPortError: the port cannot be bound (the cluster runs on).
        """
        sock = dashboard_launch.bind(host, port)
        env = dict(os.environ)
        env[TOKEN_ENV] = self.token
        sup = ChildSupervisor(
            "ember.dashboard",
            "dashboard",
            dashboard_launch.child_args(
                sock,
                session_dir=self.session_dir,
                control=f"unix:{self.control_unix}",
                url_host=host,
                grafana_host=grafana_host,
            ),
            os.path.join(self.session_dir, "logs", "dashboard.log"),
            pass_fds=(sock.fileno(),),
            env=env,
            redirect_output=True,
        )
        thread = threading.Thread(
            target=sup.run_thread, name="ember-dashboard-supervisor", daemon=True
        )
        self.dashboard = (sup, thread, sock)
        thread.start()
        return f"{host}:{dashboard_launch.bound_port(sock)}"

    def stop(self) -> None:
        """SIGTERM the daemons (the node stops its workers), then SIGKILL stragglers."""
        dashboard, self.dashboard = self.dashboard, None
        if dashboard is not None:
            dashboard[0].stop()
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        if dashboard is not None:
            sup, thread, sock = dashboard
            thread.join(max(deadline - time.monotonic(), 0.01))
            sup.kill()  # it did not stop in time
            sock.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.session_dir, dashboard_launch.URL_FILE))
        for p in reversed(self.procs):
            try:
                p.wait(max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()
        shutil.rmtree(os.path.join(self.session_dir, "sockets"), ignore_errors=True)
        # A daemon that had to be killed could not remove its arena: do it here.
        session = os.path.basename(self.session_dir.rstrip("/"))
        for path in glob.glob(f"/dev/shm/ember-{session}-*") + glob.glob(
            os.path.join(self.session_dir, "objects", f"ember-{session}-*")
        ):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def _spawn(
    args: list[str], env: dict[str, str], log_path: str
) -> tuple[subprocess.Popen[bytes], int]:
    r, w = os.pipe()
    log = open_private_log(log_path)
    try:
        p = subprocess.Popen(
            [sys.executable, *args, "--ready-fd", str(w)],
            env=env,
            pass_fds=(w,),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
    finally:
        os.close(log)
        os.close(w)
    return p, r


def _wait_ready(p: subprocess.Popen[bytes], r: int, what: str, log_path: str) -> str:
    return read_ready_line(r, p, what, log_path, READY_TIMEOUT_S)


def start_local_cluster(
    session_dir: str,
    token: str,
    resources: dict[str, float],
    object_store_bytes: int,
    labels: dict[str, str] | None = None,
    node_env: dict[str, str] | None = None,
) -> LocalCluster:
    """Start the control service and a node daemon side by side; wait until both serve.

    ``control_address`` is then the control service's ``unix:`` address;
    ``node_env`` adds settings to the daemons' environment (spilling, metrics).
    """
    cluster = LocalCluster(session_dir=session_dir, token=token)
    env = dict(os.environ)
    env[TOKEN_ENV] = token
    env[PARENT_ENV] = str(os.getpid())
    logs = os.path.join(session_dir, "logs")
    cluster.control_unix = os.path.join(session_dir, "sockets", "control")
    control_log = os.path.join(logs, "control.log")
    node_log = os.path.join(logs, "node.log")
    try:
        cp, cr = _spawn(
            [
                "-m",
                "ember.control",
                "--session-dir",
                session_dir,
                "--unix",
                cluster.control_unix,
                "--host",
                "",
            ],
            {**env, **(node_env or {})},
            control_log,
        )
        cluster.procs.append(cp)
        np_, nr = _spawn(
            [
                "-m",
                "ember.node",
                "--session-dir",
                session_dir,
                "--control",
                f"unix:{cluster.control_unix}",
                "--resources",
                json.dumps(resources),
                "--object-store-bytes",
                str(object_store_bytes),
                "--labels",
                json.dumps(labels or {}),
                "--head",
                "--no-tcp",
            ],
            {**env, **(node_env or {})},
            node_log,
        )
        cluster.procs.append(np_)
        cluster.control_address = _wait_ready(cp, cr, "control service", control_log)
        node_line = _wait_ready(np_, nr, "node daemon", node_log)
    except BaseException:
        cluster.stop()
        raise
    _, cluster.node_id = node_line.split()
    cluster.node_unix = os.path.join(
        session_dir, "sockets", f"node-{cluster.node_id[:8]}"
    )
    return cluster
