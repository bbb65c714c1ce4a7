"""A cluster of several nodes on this machine, for tests (``ray.cluster_utils``).

Example::

    from ember.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    worker = cluster.add_node(num_cpus=4, resources={"accel": 1})
    cluster.connect()            # ember.init(address=cluster.address)
    ...
    cluster.remove_node(worker)  # the node shows up dead in ember.nodes()
    cluster.shutdown()

The control service and every node daemon are child processes of the
caller, listening on 127.0.0.1, each node with its own session folder; they
get SIGTERM if the caller dies.  The first node added is the head node.  The
cluster's token is put in ``EMBER_AUTH_TOKEN`` in ``os.environ`` while the
cluster lives (so that ``ember.init(address=cluster.address)`` finds it) and
restored by :meth:`Cluster.shutdown`.  Removing the head node stops only its
node daemon: the control service lives until :meth:`Cluster.shutdown`.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import time
from typing import Any

from ember.autoscaling_cluster import AutoscalingCluster as AutoscalingCluster
from ember.cli.daemons import (
    Daemon,
    daemon_env,
    remove_session_leftovers,
    spawn,
    stop_processes,
    wait_ready,
)
from ember.common import session
from ember.common.node_labels import node_labels_error
from ember.common.resources import default_memory_bytes
from ember.protocol.messages import SCHEMA, Empty, NodeInfo
from ember.rpc.connection import connect as rpc_connect

__all__ = ["AutoscalingCluster", "Cluster", "ClusterNode", "cluster_not_supported"]

#: Whether this platform cannot run a multi-node Cluster (Ray: True on Windows).
cluster_not_supported = False

NODE_DEFAULTS: dict[str, Any] = {
    "num_cpus": 1,
    "num_gpus": 0,
    "object_store_memory": 150 * 1024 * 1024,
}
LOCAL_IP = "127.0.0.1"


class ClusterNode:
    """A node daemon started by :class:`Cluster` (what ``add_node`` returns)."""

    def __init__(
        self,
        daemon: Daemon,
        session_dir: str,
        resources: dict[str, float],
        head: bool,
        node_ip_address: str = LOCAL_IP,
    ) -> None:
        self.daemon = daemon
        self.session_dir = session_dir
        self.resources = resources
        self.head = head
        tcp, _, node_id = daemon.ready_line.partition(" ")
        self.address = tcp.removeprefix("tcp:")
        self.node_id = node_id
        self.unique_id = node_id
        self.node_ip_address = node_ip_address

    def is_head(self) -> bool:
        return self.head

    def all_processes_alive(self) -> bool:
        return self.daemon.proc.poll() is None

    def __repr__(self) -> str:
        role = "head" if self.head else "worker"
        return f"ClusterNode({self.node_id[:8]}, {role}, {self.resources})"


class Cluster:
    """Start a control service and node daemons on this machine (Ray's test helper).

    Args:
        initialize_head: add the head node at once (with ``head_node_args``).
        connect: with ``initialize_head``, also call :meth:`connect`.
        head_node_args: ``add_node`` arguments for the head node.
        shutdown_at_exit: call :meth:`shutdown` when the interpreter exits.
    """

    def __init__(
        self,
        initialize_head: bool = False,
        connect: bool = False,
        head_node_args: dict[str, Any] | None = None,
        shutdown_at_exit: bool = True,
    ) -> None:
        self.token = session.new_token()
        self._saved_token = os.environ.get(session.TOKEN_ENV)
        os.environ[session.TOKEN_ENV] = self.token
        self._control: Daemon | None = None
        self._control_dir = ""
        self.control_address = ""
        self.head_node: ClusterNode | None = None
        self.worker_nodes: list[ClusterNode] = []
        self.connected = False
        self._down = False
        if shutdown_at_exit:
            atexit.register(self.shutdown)
        if initialize_head:
            self.add_node(**(head_node_args or {}))
            if connect:
                self.connect()

    @property
    def address(self) -> str:
        """``HOST:PORT`` of the control service (for ``ember.init(address=...)``)."""
        return self.control_address.removeprefix("tcp:")

    @property
    def gcs_address(self) -> str | None:
        """Ray's name for :attr:`address` (None before the head node is added)."""
        return self.address if self.head_node is not None else None

    def remaining_processes_alive(self) -> bool:
        """Whether the control service and every node's daemon are still running."""
        control_alive = self._control is not None and self._control.proc.poll() is None
        nodes = [n for n in (self.head_node, *self.worker_nodes) if n is not None]
        return control_alive and all(n.all_processes_alive() for n in nodes)

    def _start_control(self) -> None:
        self._control_dir = session.new_session_dir(tag="control")
        env = daemon_env(self.token, die_with_parent=True)
        d, r = spawn(
            "control service",
            "ember.control",
            [
                "--session-dir",
                self._control_dir,
                "--unix",
                os.path.join(self._control_dir, "sockets", "control"),
                "--host",
                LOCAL_IP,
                "--port",
                "0",
            ],
            env,
            os.path.join(self._control_dir, "logs", "control.log"),
            detached=False,
        )
        self._control = d
        self.control_address = wait_ready(d, r)

    def add_node(self, wait: bool = True, **node_args: Any) -> ClusterNode:
        """Start a node daemon (the first one is the head node) and return its handle.

        Args:
            wait: accepted for Ray compatibility; the node is registered on return.
            node_args: ``num_cpus`` (default 1), ``num_gpus`` (0), ``resources``,
                ``object_store_memory`` (150 MiB), ``node_ip_address`` (127.0.0.1;
                another loopback address such as 127.0.0.2 gives the node an IP
                of its own), ``labels`` (a dict of str to str: the node's labels,
                for NodeLabelSchedulingStrategy).
        """
        valid = {*NODE_DEFAULTS, "resources", "node_ip_address", "labels"}
        unknown = set(node_args) - valid
        if unknown:
            raise TypeError(
                f"add_node() got unexpected argument(s) {sorted(unknown)}; valid: "
                f"{sorted(valid)}"
            )
        labels = dict(node_args.get("labels") or {})
        if why := node_labels_error(labels):
            raise ValueError(f"add_node() 'labels': {why}")
        if self._down:
            raise RuntimeError("this Cluster was shut down")
        args = {**NODE_DEFAULTS, **node_args}
        ip = str(args.pop("node_ip_address", None) or LOCAL_IP)
        if self._control is None:
            self._start_control()
        head = self.head_node is None
        store = int(args["object_store_memory"])
        totals: dict[str, float] = {
            "CPU": float(args["num_cpus"]),
            "memory": float(default_memory_bytes(store)),
            "object_store_memory": float(store),
            f"node:{ip}": 1.0,
        }
        if args["num_gpus"]:
            totals["GPU"] = float(args["num_gpus"])
        if head:
            totals["node:__internal_head__"] = 1.0
        totals.update({k: float(v) for k, v in (args.get("resources") or {}).items()})
        n = len(self.worker_nodes) + (0 if head else 1)
        session_dir = session.new_session_dir(tag=f"node{n}")
        cmd = [
            "--session-dir",
            session_dir,
            "--control",
            self.control_address,
            "--node-ip",
            ip,
            "--resources",
            json.dumps(totals),
            "--object-store-bytes",
            str(store),
            "--labels",
            json.dumps(labels),
        ]
        d, r = spawn(
            "node daemon",
            "ember.node",
            [*cmd, "--head"] if head else cmd,
            daemon_env(self.token, die_with_parent=True),
            os.path.join(session_dir, "logs", "node.log"),
            detached=False,
        )
        wait_ready(d, r)
        node = ClusterNode(d, session_dir, totals, head, ip)
        if head:
            self.head_node = node
        else:
            self.worker_nodes.append(node)
        return node

    def remove_node(self, node: ClusterNode, allow_graceful: bool = True) -> None:
        """Stop a node daemon (SIGTERM, or SIGKILL unless ``allow_graceful``)."""
        stop_processes([node.daemon.record()], force=not allow_graceful, grace_s=10)
        node.daemon.proc.wait()
        remove_session_leftovers(node.session_dir)
        if node is self.head_node:
            self.head_node = None
        elif node in self.worker_nodes:
            self.worker_nodes.remove(node)

    def list_all_nodes(self) -> list[ClusterNode]:
        """The nodes not removed yet, the head node first."""
        return ([self.head_node] if self.head_node else []) + list(self.worker_nodes)

    async def _get_nodes(self) -> list[NodeInfo]:
        conn = await rpc_connect(
            self.control_address, token=self.token.encode(), schema=SCHEMA
        )
        try:
            reply, _ = await conn.call("control.get_nodes", Empty(), timeout=10)
        finally:
            conn.close()
        return list(reply.nodes)

    def wait_for_nodes(self, timeout: float = 30) -> None:
        """Wait until the control service sees every node of this Cluster alive.

        Raises:
            TimeoutError: some node did not show up within ``timeout`` seconds.
        """
        want = {n.node_id for n in self.list_all_nodes()}
        deadline = time.monotonic() + timeout
        while True:
            alive = {i.node_id.hex() for i in asyncio.run(self._get_nodes()) if i.alive}
            if want <= alive:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(want - alive)} of {len(want)} nodes are not alive in the "
                    f"control service after {timeout}s: {sorted(want - alive)}"
                )
            time.sleep(0.05)  # polling a remote condition, with a deadline

    def connect(self, namespace: str | None = None) -> Any:
        """``ember.init(address=self.address, namespace=namespace)``."""
        import ember

        ctx = ember.init(address=self.address, namespace=namespace)
        self.connected = True
        return ctx

    def shutdown(self) -> None:
        """Disconnect the driver if :meth:`connect` was used, stop every process."""
        if self._down:
            return
        self._down = True
        if self.connected:
            import ember

            ember.shutdown()
            self.connected = False
        for node in self.list_all_nodes()[::-1]:
            self.remove_node(node)
        if self._control is not None:
            stop_processes([self._control.record()], force=False, grace_s=10)
            self._control.proc.wait()
            remove_session_leftovers(self._control_dir)
            self._control = None
        if os.environ.get(session.TOKEN_ENV) == self.token:
            if self._saved_token is None:
                del os.environ[session.TOKEN_ENV]
            else:
                os.environ[session.TOKEN_ENV] = self._saved_token
