"""The ``local`` node provider: node daemons started with ``ember start --address``.

Without ``provider.worker_ips`` every node runs on this machine: the
provider starts ``python -m ember.cli.main start --address HEAD --block``
with the node type's resources and labels, in its own session, and stops it
with SIGTERM (``--block`` then stops its node daemon and removes its
records). With ``worker_ips`` (and optionally ``ssh_user`` and
``ssh_private_key``) it runs the same command over ``ssh`` on the first host
that has no node yet, handing the cluster token on the command's standard
input (never on a command line), and stops it with ``ember stop`` there: one
node per host.

What it started is kept in ``<state_dir>/nodes.json`` (0600, in the head's
0700 session folder), so a restarted autoscaler and ``ember down`` find the
nodes again. A node counts as running while its local process (the
``ember start --block`` command, or the ssh client carrying it) runs.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from typing import Any

import psutil

from ember.autoscaler.config import (
    LAUNCH_LABEL,
    NODE_TYPE_LABEL,
    ClusterConfig,
    NodeType,
)
from ember.autoscaler.provider import ProviderError, ProviderNode
from ember.common.private_files import (
    ensure_private_dir,
    open_private_log,
    read_private,
    write_private,
)
from ember.common.process import TOKEN_ENV

logger = logging.getLogger(__name__)

#: resources given by their own ``ember start`` options, not by --resources
_OWN_OPTIONS = {"CPU", "GPU", "memory", "object_store_memory"}
STOP_GRACE_S = 15.0


def start_args(address: str, node_type: NodeType, launch_id: str) -> list[str]:
    """The ``ember start`` arguments for one node of ``node_type``."""
    r = node_type.resources
    args = ["start", "--address", address.removeprefix("tcp:"), "--block"]
    if "CPU" in r:
        args += ["--num-cpus", str(int(r["CPU"]))]
    if "GPU" in r:
        args += ["--num-gpus", str(int(r["GPU"]))]
    store = r.get("object_store_memory") or node_type.node_config.get(
        "object_store_memory"
    )
    if store:
        args += ["--object-store-memory", str(int(store))]
    custom = {k: v for k, v in r.items() if k not in _OWN_OPTIONS}
    if custom:
        args += ["--resources", json.dumps(custom)]
    labels = {
        **node_type.labels,
        NODE_TYPE_LABEL: node_type.name,
        LAUNCH_LABEL: launch_id,
    }
    args += ["--labels", json.dumps(labels)]
    return args


class LocalProvider:
    """Starts and stops node daemons on this machine or on ssh hosts."""

    def __init__(
        self, config: ClusterConfig, *, address: str, token: str, state_dir: str
    ) -> None:
        self.address = address
        self._token = token
        self.state_dir = ensure_private_dir(state_dir)
        self._path = os.path.join(self.state_dir, "nodes.json")
        self._logs = ensure_private_dir(os.path.join(self.state_dir, "logs"))
        p = config.provider
        self.hosts: list[str] = [str(h) for h in p.get("worker_ips") or []]
        self.ssh_user = str(p.get("ssh_user", "") or "")
        self.ssh_key = str(p.get("ssh_private_key", "") or "")
        self.ember_command = str(p.get("ember_command", "ember"))
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    # -- the record ---------------------------------------------------------------------
    def _load(self) -> list[dict[str, Any]]:
        text = read_private(self._path)
        if not text:
            return []
        return list(json.loads(text).get("nodes", []))

    def _save(self, entries: list[dict[str, Any]]) -> None:
        write_private(self._path, json.dumps({"nodes": entries}))

    def _process(self, entry: dict[str, Any]) -> psutil.Process | None:
        """The entry's local process if it still runs (same pid and start time)."""
        proc = self._procs.get(entry["id"])
        if proc is not None and proc.poll() is not None:
            return None  # reaped here: the pid may be reused
        try:
            p = psutil.Process(int(entry["pid"]))
            if abs(p.create_time() - float(entry["create_time"])) > 0.01:
                return None
            if p.status() == psutil.STATUS_ZOMBIE:
                return None
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
        return p

    # -- NodeProvider -------------------------------------------------------------------
    def nodes(self) -> list[ProviderNode]:
        entries = self._load()
        live = [e for e in entries if self._process(e) is not None]
        if len(live) != len(entries):
            self._save(live)
        return [ProviderNode(e["id"], e["type"], float(e["launched_at"])) for e in live]

    def launch(self, node_type: NodeType, count: int) -> list[str]:
        entries = self._load()
        ids = []
        for _ in range(count):
            launch_id = f"{node_type.name[:40]}-{secrets.token_hex(4)}"
            host = ""
            if self.hosts:
                used = {e.get("host") for e in entries if self._process(e) is not None}
                free = [h for h in self.hosts if h not in used]
                if not free:
                    logger.warning(
                        "no free host in provider.worker_ips for a %s node",
                        node_type.name,
                    )
                    break
                host = free[0]
            proc = self._spawn(node_type, launch_id, host)
            entries.append(
                {
                    "id": launch_id,
                    "type": node_type.name,
                    "pid": proc.pid,
                    "create_time": psutil.Process(proc.pid).create_time(),
                    "launched_at": time.time(),
                    "host": host,
                }
            )
            self._save(entries)
            ids.append(launch_id)
            logger.info(
                "started node %s (%s) pid %d", launch_id, host or "here", proc.pid
            )
        return ids

    def _spawn(
        self, node_type: NodeType, launch_id: str, host: str
    ) -> subprocess.Popen[bytes]:
        args = start_args(self.address, node_type, launch_id)
        env = dict(os.environ)
        env.pop("EMBER_DIE_WITH_PARENT", None)
        log = open_private_log(os.path.join(self._logs, f"{launch_id}.log"))
        try:
            if host:
                cmd = [*self._ssh(host), _remote(self.ember_command, args)]
                proc = subprocess.Popen(
                    cmd, stdin=subprocess.PIPE, stdout=log, stderr=log,
                    start_new_session=True, env=env,
                )  # fmt: skip
                assert proc.stdin is not None
                proc.stdin.write(self._token.encode() + b"\n")
                proc.stdin.close()
            else:
                env[TOKEN_ENV] = self._token
                proc = subprocess.Popen(
                    [sys.executable, "-m", "ember.cli.main", *args],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True, env=env,
                )  # fmt: skip
        except OSError as exc:
            raise ProviderError(f"cannot start a {node_type.name} node: {exc}") from exc
        finally:
            os.close(log)
        self._procs[launch_id] = proc
        return proc

    def _ssh(self, host: str) -> list[str]:
        cmd = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"]
        if self.ssh_key:
            cmd += ["-i", os.path.expanduser(self.ssh_key)]
        return [*cmd, f"{self.ssh_user}@{host}" if self.ssh_user else host]

    def terminate(self, provider_id: str) -> None:
        entries = self._load()
        entry = next((e for e in entries if e["id"] == provider_id), None)
        if entry is None:
            return
        self._stop(entry)
        self._save([e for e in entries if e["id"] != provider_id])

    def terminate_all(self) -> None:
        for entry in self._load():
            self._stop(entry)
        self._save([])

    def _stop(self, entry: dict[str, Any]) -> None:
        if entry.get("host"):
            try:
                subprocess.run(
                    [*self._ssh(entry["host"]), f"{self.ember_command} stop"],
                    stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                )  # fmt: skip
            except (OSError, subprocess.TimeoutExpired) as exc:
                logger.warning("ember stop on %s failed: %s", entry["host"], exc)
        p = self._process(entry)
        if p is not None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(STOP_GRACE_S)
            except psutil.TimeoutExpired:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        proc = self._procs.pop(entry["id"], None)
        if proc is not None:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        logger.info("stopped node %s", entry["id"])


def _remote(ember: str, args: list[str]) -> str:
    """The remote shell command: read the token from stdin, then run ember."""
    quoted = " ".join(shlex.quote(a) for a in args)
    return f"IFS= read -r {TOKEN_ENV} && export {TOKEN_ENV} && exec {ember} {quoted}"
