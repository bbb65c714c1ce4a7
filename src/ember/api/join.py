"""Which cluster init() joins, and joining it: the address, the environment, the record.

Theory of operation.  ``init(address=...)`` resolves its target in Ray's order
(:func:`choose`):

1. ``address`` None or ``"auto"``: ``EMBER_ADDRESS``, else ``RAY_ADDRESS``,
   replaces it when set (and is logged).
2. ``"local"``: start a new embedded cluster, whatever runs here.
3. None: the cluster recorded on this machine (``session.cluster_record_path()``:
   the last ``ember start``, or the embedded cluster of another driver's plain
   ``init()``) when its processes still run.  A stale record is ignored and
   removed.  An ``init()`` that sets the node's resources (``num_cpus``, ...)
   does not join another driver's embedded cluster: it starts its own, as two
   such scripts run side by side expect.  Nothing live recorded: start one.
4. ``"auto"``: the recorded cluster; none (``ConnectionError`` in Ray's words)
   or a stale one (the error names the record and the process that is gone).
5. Anything else: the control service at ``HOST:PORT`` (or ``tcp:``/``unix:``).

:func:`connect` then finds the token (the record's own when the record chose
the cluster), probes the control service for a node on this machine, and
starts the driver's core worker there.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Any

from ember.common import session, tls
from ember.common.config import Config
from ember.protocol.messages import SCHEMA, Empty
from ember.rpc.connection import connect as rpc_connect
from ember.rpc.errors import AuthenticationError, ConnectionLostError
from ember.runtime.core_worker import CoreWorker
from ember.runtime.loop_thread import LoopThread

logger = logging.getLogger("ember.api.init")

ENV_VARS = (session.ADDRESS_ENV, "RAY_ADDRESS")

#: how long a driver waits for a node of this machine to (re-)register
LOCAL_NODE_WAIT_S = 5.0

NOTHING_RUNNING = (
    "Could not find any running ember instance on this machine. Please specify the "
    "one to connect to with the `address` argument or the `EMBER_ADDRESS` (or "
    "`RAY_ADDRESS`) environment variable, start one with 'ember start --head', or call "
    "ember.init() with no address to start a local one."
)


@dataclass(frozen=True)
class Choice:
    """What init() connects to: nothing (start an embedded cluster) or a control address."""

    control: str = ""
    #: the cluster record that named the cluster (its token is used)
    record: dict[str, Any] | None = None
    #: the address as the user (or the environment) gave it, for messages
    given: str = ""


def choose(address: str | None, *, own_node: bool) -> Choice:
    """The cluster ``init(address)`` connects to (see the module's docstring).

    ``own_node``: the caller set the node's resources (then a plain init() does
    not join another driver's embedded cluster).

    Raises:
        ConnectionError: ``"auto"`` and no live cluster is recorded here.
        ValueError: a malformed ``HOST:PORT``.
    """
    if address in (None, "auto"):
        for var in ENV_VARS:
            value = os.environ.get(var)
            if value:
                logger.info(
                    "Using the address %s from the environment (%s).", value, var
                )
                address = value
                break
    if address in ("", "local"):
        return Choice()
    if address is None:
        return _recorded_or_new(own_node)
    if address == "auto":
        rec = _read_record()
        if rec is None:
            raise ConnectionError(NOTHING_RUNNING)
        dead = session.dead_processes(rec)
        if dead:
            raise ConnectionError(
                f"The cluster recorded on this machine ({session.cluster_record_path()}) "
                f"is not running any more: {_gone(dead)}. Start one with 'ember start "
                "--head' (or call ember.init() with no address, which removes the stale "
                "record and starts a local cluster)."
            )
        return Choice(str(rec["control_address"]), rec, address)
    if address.startswith("ray://"):
        from ember.api.extras import CLIENT_UNSUPPORTED

        raise NotImplementedError(CLIENT_UNSUPPORTED)
    host_port = address.removeprefix("ember://")
    if host_port.startswith(("tcp:", "unix:")):
        return Choice(host_port, None, address)
    check_host_port(host_port)
    return Choice(f"tcp:{host_port}", None, address)


def _read_record() -> dict[str, Any] | None:
    """The cluster record, None if there is none or it names no control address."""
    rec = session.read_cluster_record()
    if not isinstance(rec, dict) or not isinstance(rec.get("control_address"), str):
        return None
    return rec


def _recorded_or_new(own_node: bool) -> Choice:
    rec = _read_record()
    if rec is None:
        return Choice()
    dead = session.dead_processes(rec)
    if dead:
        logger.info(
            "Ignoring the stale cluster record %s (%s).",
            session.cluster_record_path(),
            _gone(dead),
        )
        entries = rec.get("processes")
        if not isinstance(entries, list) or len(dead) == len(entries):  # all gone
            session.remove_cluster_record(str(rec.get("session_dir", "")))
        return Choice()
    if own_node and rec.get("kind") == "embedded":
        logger.info(
            "Not joining the local cluster of driver pid %s: this init() sets the "
            'node\'s resources, so it starts a cluster of its own (address="auto" '
            "joins that one).",
            rec.get("pid"),
        )
        return Choice()
    return Choice(str(rec["control_address"]), rec, "")


def _gone(dead: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"its {e.get('name', 'process')} (pid {e.get('pid')}) exited" for e in dead
    )


def describe(choice: Choice) -> str:
    """Where init() connects, for the log line (Ray: "Connecting to existing ...")."""
    where = choice.control.removeprefix("tcp:")
    rec = choice.record
    if rec is None:
        return f"Connecting to the existing ember cluster at {where}..."
    if rec.get("kind") == "embedded":
        return (
            f"Connecting to the existing ember cluster at {where}: the local cluster of "
            f"driver pid {rec.get('pid')}, which stops when that driver exits..."
        )
    return (
        f"Connecting to the existing ember cluster at {where} (recorded in "
        f"{session.cluster_record_path()})..."
    )


def check_host_port(host_port: str) -> None:
    """``HOST:PORT`` or a ValueError in Ray's words (``init(address="192.0.2.2")``)."""
    host, sep, port = host_port.rpartition(":")
    if not sep or not host:
        raise ValueError(
            f"Invalid address format: {host_port}. Expected '<host>:<port>' (the "
            "control service's, e.g. from 'ember start --head'), or 'auto'."
        )
    if not port.isdigit():
        raise ValueError(f"Malformed address port {port}. Must be an integer.")
    if not 0 < int(port) < 65536:
        raise ValueError(
            f"Invalid address port {port}. Must be between 1 and 65535 (inclusive)."
        )


def check_no_node_args(
    num_cpus: Any, num_gpus: Any, resources: Any, object_store_memory: Any
) -> None:
    """Ray's rule: a driver that joins a cluster does not set the node's resources."""
    if num_cpus is not None or num_gpus is not None:
        raise ValueError(
            "When connecting to an existing cluster, num_cpus and num_gpus must not be "
            "provided: resources are set when the cluster's nodes start."
        )
    if resources is not None:
        raise ValueError(
            "When connecting to an existing cluster, resources must not be provided."
        )
    if object_store_memory is not None:
        raise ValueError(
            "When connecting to an existing cluster, object_store_memory must not be "
            "provided."
        )


def connect(choice: Choice, config: Config, log_to_driver: bool) -> CoreWorker:
    """Start this driver's core worker on the chosen cluster's node on this machine."""
    control = choice.control
    rec = choice.record
    # The token: the record's when the record chose the cluster; else
    # EMBER_AUTH_TOKEN (set by ember.cluster_utils.Cluster, or the user), else
    # the record's if it names the cluster asked for, else the token file
    # `ember start --head` wrote for it (~/.ember/clusters/<host>_<port>/auth_token).
    token = str(rec.get("token", "")) if rec is not None else ""
    token = token or os.environ.get(session.TOKEN_ENV, "")
    if not token:
        here = session.read_cluster_record()
        if here is not None and here.get("control_address") == control:
            token = str(here.get("token", ""))
    tcp = control.startswith("tcp:")
    # TLS: the environment's (EMBER_USE_TLS), else the files `ember start --tls`
    # recorded for this cluster here; a plaintext driver at a TLS cluster is
    # told so (rpc.errors.TlsRequiredError).
    tls.use_for_cluster(control)
    token = token or session.read_token(control if tcp else None)
    if not token:
        where = session.token_path(control if tcp else None)
        raise ConnectionError(
            f"No cluster token for {choice.given or control}: set EMBER_AUTH_TOKEN, or "
            f"copy the head's token file to {where} (ember start --head prints its path)."
        )
    try:
        node, session_dir = _find_local_node(control, token.encode(), config)
    except ConnectionError as exc:
        if rec is None:
            raise
        raise ConnectionError(
            f"The cluster recorded on this machine ({session.cluster_record_path()}) is "
            f"not running any more: {exc}. Start it again with 'ember start --head' (or "
            "remove the stale record with 'ember stop')."
        ) from exc
    cw = CoreWorker(
        is_driver=True,
        token=token.encode(),
        node_unix=node.unix.removeprefix("unix:"),
        control_address=control,
        session_dir=session_dir,
        node_ip=node.ip,
        config=config,
        log_to_driver=log_to_driver,
    )
    cw.start()
    return cw


def _find_local_node(control: str, token: bytes, config: Config) -> tuple[Any, str]:
    lt = LoopThread("ember-probe")
    try:

        async def probe() -> Any:
            conn = await rpc_connect(
                control, token=token, schema=SCHEMA, timeout=config.connect_timeout_s
            )
            try:
                # A control service that just restarted has no nodes until they
                # register again (within about a second): give them that long.
                deadline = asyncio.get_running_loop().time() + LOCAL_NODE_WAIT_S
                while True:
                    reply, _ = await conn.call("control.get_nodes", Empty(), timeout=10)
                    if _local_nodes(reply.nodes) or (
                        asyncio.get_running_loop().time() > deadline
                    ):
                        return reply.nodes
                    await asyncio.sleep(0.1)
            finally:
                conn.close()

        try:
            nodes = lt.run(probe(), timeout=config.connect_timeout_s + 10)
        except AuthenticationError:
            raise  # the cluster is there and refused us: say that, not "cannot connect"
        except (OSError, ConnectionLostError) as exc:
            raise ConnectionError(
                f"Could not connect to the ember cluster at {control}: {exc}"
            ) from exc
    finally:
        lt.stop()
    # Nodes on this machine are those whose unix socket we can see.  Several
    # may run here (ember start --address beside the head, or cluster_utils):
    # the driver uses the head node if it is here, else the oldest node.
    local = _local_nodes(nodes)
    if not local:
        raise ConnectionError(
            f"The cluster at {control} has no node on this machine: start one with "
            f"'ember start --address {control.removeprefix('tcp:')}' first."
        )
    return local[0], local[0].session_dir


def _local_nodes(nodes: list[Any]) -> list[Any]:
    """The live nodes whose unix socket this machine has, head first, then oldest."""
    return sorted(
        (n for n in nodes if n.alive and os.path.exists(n.unix.removeprefix("unix:"))),
        key=lambda n: (not n.is_head, n.start_time),
    )
