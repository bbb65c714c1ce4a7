"""This node's share of placement groups: the ``node.*_bundles`` handlers.

prepare: reserve the bundles' resources out of the node's available ones
(all bundles of the request, or none).  commit: expose them as the bundles'
own resources (``CPU_group_<i>_<pg>``, ``CPU_group_<pg>``, ``bundle_group_...``)
that tasks scheduled into the group ask for.  cancel: drop both and give the
reserved resources back (removing a group, or rolling back a failed one); the
leases that were drawing on them are handed to ``removed`` (their workers are
stopped, as Ray does).
The amounts live in the node's ``ResourceLedger``; this is the RPC face of
its ``prepare``/``commit``/``return_bundles``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ember.protocol.messages import Empty, PrepareBundlesReply
from ember.rpc.connection import Connection
from ember.scheduler.ledger import ResourceLedger

logger = logging.getLogger(__name__)


class Bundles:
    """Placement group bundle handlers over the node's ledger."""

    def __init__(
        self,
        ledger: ResourceLedger,
        changed: Callable[[], None],
        removed: Callable[[list[int]], None] | None = None,
    ) -> None:
        self._ledger = ledger
        #: called when the ledger changed (report it, grant what now fits)
        self._changed = changed
        #: called with the leases that drew on a cancelled group's bundles
        self._removed = removed

    def handlers(self) -> dict[str, Any]:
        return {
            "node.prepare_bundles": self.h_prepare,
            "node.commit_bundles": self.h_commit,
            "node.cancel_bundles": self.h_cancel,
        }

    def h_prepare(self, conn: Connection, req: Any, bufs: Any) -> PrepareBundlesReply:
        known = req.pg_id in self._ledger.groups()
        ok = self._ledger.prepare(
            req.pg_id, list(zip(req.indexes, req.bundles, strict=True))
        )
        if ok and not known:
            self._changed()
        return PrepareBundlesReply(ok=ok)

    def h_commit(self, conn: Connection, req: Any, bufs: Any) -> Empty:
        if self._ledger.commit(req.pg_id):
            self._changed()
        return Empty()

    def h_cancel(self, conn: Connection, req: Any, bufs: Any) -> Empty:
        drawing = self._ledger.return_bundles(req.pg_id)
        if drawing:
            logger.info(
                "placement group %s removed while %d lease(s) still use its bundles",
                req.pg_id.hex(),
                len(drawing),
            )
        if self._removed is not None:
            self._removed(drawing)
        self._changed()
        return Empty()
