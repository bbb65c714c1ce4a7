"""Telling every node which object owners died, so they free what those owned.

An owner that exits normally frees its objects itself; one killed (``kill
-9``, a crash, its node's death) cannot.  The control service learns of such
deaths (a driver's job ends, a node reports a worker's exit, a node is lost)
and broadcasts them to every node in batches (``node.owners_died``); each
node frees the objects it holds for those owners (``node/object_owners.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from ember.control.nodes import NodeTable
from ember.protocol.messages import OwnersDiedMessage
from ember.rpc.errors import RpcError

#: deaths that arrive within this long of each other travel in one message
BATCH_S = 0.05


class DeadOwners:
    """Collects owner deaths and sends them to every live node in batches."""

    def __init__(self, nodes: NodeTable) -> None:
        self._nodes = nodes
        self._workers: set[bytes] = set()
        self._node_ids: set[bytes] = set()
        self._scheduled = False

    def died(
        self, worker_ids: Iterable[bytes] = (), node_ids: Iterable[bytes] = ()
    ) -> None:
        self._workers.update(w for w in worker_ids if w)
        self._node_ids.update(n for n in node_ids if n)
        if not self._scheduled and (self._workers or self._node_ids):
            self._scheduled = True
            asyncio.get_running_loop().call_later(BATCH_S, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        msg = OwnersDiedMessage(
            worker_ids=sorted(self._workers), node_ids=sorted(self._node_ids)
        )
        self._workers.clear()
        self._node_ids.clear()
        for conn in list(self._nodes.conns.values()):
            if conn.is_closed():
                continue
            try:
                conn.notify("node.owners_died", msg)
            except RpcError:
                pass  # that node is going; its store goes with it
