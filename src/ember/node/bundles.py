"""This node's share of placement groups: prepared and committed bundles.

prepare: reserve the bundle's resources out of the node's available ones
(all bundles of the request, or none).  commit: expose them as the bundle's
own resources (``CPU_group_<i>_<pg>``, ``CPU_group_<pg>``, ``bundle_group_...``)
that tasks scheduled into the group ask for.  cancel: drop both and give the
reserved resources back (removing a group, or rolling back a failed one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ember.protocol.messages import Empty, PrepareBundlesReply
from ember.rpc.connection import Connection
from ember.scheduler import resources as res
from ember.scheduler.placement import bundle_resource_names

if TYPE_CHECKING:
    from ember.node.daemon import NodeDaemon


class BundleLedger:
    """Prepared and committed bundles on one node, by placement group."""

    def __init__(self, daemon: NodeDaemon) -> None:
        self.d = daemon
        #: pg id -> [(bundle index, resources)] reserved here
        self.prepared: dict[bytes, list[tuple[int, dict[str, float]]]] = {}
        #: pg id -> the bundle resources added to this node's totals
        self.committed: dict[bytes, dict[str, float]] = {}

    def handlers(self) -> dict[str, Any]:
        return {
            "node.prepare_bundles": self.h_prepare,
            "node.commit_bundles": self.h_commit,
            "node.cancel_bundles": self.h_cancel,
        }

    def h_prepare(self, conn: Connection, req: Any, bufs: Any) -> PrepareBundlesReply:
        if req.pg_id in self.prepared:
            return PrepareBundlesReply(ok=True)
        need: dict[str, float] = {}
        for b in req.bundles:
            res.add(need, b)
        if not res.fits(need, self.d.available):
            return PrepareBundlesReply(ok=False)
        res.subtract(self.d.available, need)
        self.prepared[req.pg_id] = list(zip(req.indexes, req.bundles, strict=True))
        self.d.resources_changed()
        return PrepareBundlesReply(ok=True)

    def h_commit(self, conn: Connection, req: Any, bufs: Any) -> Empty:
        bundles = self.prepared.get(req.pg_id)
        if bundles is None or req.pg_id in self.committed:
            return Empty()
        added: dict[str, float] = {}
        for index, b in bundles:
            res.add(added, bundle_resource_names(req.pg_id.hex(), index, b))
        res.add(self.d.total, added)
        res.add(self.d.available, added)
        self.committed[req.pg_id] = added
        self.d.resources_changed()
        self.d.dispatch()
        return Empty()

    def h_cancel(self, conn: Connection, req: Any, bufs: Any) -> Empty:
        added = self.committed.pop(req.pg_id, None)
        if added is not None:
            for k, v in added.items():
                self.d.total[k] = self.d.total.get(k, 0.0) - v
                self.d.available[k] = self.d.available.get(k, 0.0) - v
                if self.d.total[k] <= 1e-9:
                    self.d.total.pop(k, None)
                    self.d.available.pop(k, None)
        bundles = self.prepared.pop(req.pg_id, None)
        if bundles is not None:
            for _, b in bundles:
                res.add(self.d.available, b)
        self.d.resources_changed()
        self.d.dispatch()
        return Empty()
