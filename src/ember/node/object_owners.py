"""Which owner each object in this node's store belongs to, to free them when it dies.

An owner (a driver or a worker) frees its objects when their last reference
goes; an owner killed with ``kill -9`` never does.  The node records the
owner's worker and node ids with every object created or copied here and,
when the control service says owners died (``node.owners_died``: a driver's
job ended, a worker exited, a node died), frees what they owned, in memory and
on disk.  Pure bookkeeping: the caller does the freeing.
"""

from __future__ import annotations

from collections.abc import Iterable

#: dead owners remembered (an object created for one afterwards is freed at once)
DEAD_OWNERS_KEPT = 65_536


class ObjectOwners:
    """oid -> owner, owner -> oids, owner node -> owners."""

    def __init__(self) -> None:
        self._owner_of: dict[bytes, bytes] = {}
        self._by_owner: dict[bytes, set[bytes]] = {}
        self._by_node: dict[bytes, set[bytes]] = {}
        self._node_of: dict[bytes, bytes] = {}
        #: owners already dead, oldest first (a dict as an ordered set)
        self._dead: dict[bytes, None] = {}
        self._dead_nodes: set[bytes] = set()

    def __len__(self) -> int:
        return len(self._owner_of)

    def record(self, oid: bytes, owner: bytes, owner_node: bytes) -> bool:
        """Note ``owner`` of ``oid``; False when that owner is known dead (free it)."""
        if not owner:
            return True
        if owner in self._dead or owner_node in self._dead_nodes:
            return False
        self.forget(oid)
        self._owner_of[oid] = owner
        self._by_owner.setdefault(owner, set()).add(oid)
        if owner_node and owner not in self._node_of:
            self._node_of[owner] = owner_node
            self._by_node.setdefault(owner_node, set()).add(owner)
        return True

    def owner(self, oid: bytes) -> bytes:
        return self._owner_of.get(oid, b"")

    def node_of(self, owner: bytes) -> bytes:
        return self._node_of.get(owner, b"")

    def forget(self, oid: bytes) -> None:
        owner = self._owner_of.pop(oid, None)
        if owner is None:
            return
        oids = self._by_owner.get(owner)
        if oids is not None:
            oids.discard(oid)
            if not oids:
                self._drop_owner(owner)

    def _drop_owner(self, owner: bytes) -> None:
        self._by_owner.pop(owner, None)
        node = self._node_of.pop(owner, b"")
        owners = self._by_node.get(node)
        if owners is not None:
            owners.discard(owner)
            if not owners:
                del self._by_node[node]

    def owners_died(
        self, worker_ids: Iterable[bytes], node_ids: Iterable[bytes] = ()
    ) -> list[bytes]:
        """Mark these owners (and every owner on these nodes) dead; the oids they held."""
        dead = set(worker_ids)
        for node_id in node_ids:
            self._dead_nodes.add(node_id)
            dead |= self._by_node.get(node_id, set())
        for owner in dead:
            self._dead[owner] = None
        while len(self._dead) > DEAD_OWNERS_KEPT:
            del self._dead[next(iter(self._dead))]
        freed: list[bytes] = []
        for owner in dead:
            for oid in self._by_owner.get(owner, ()):
                self._owner_of.pop(oid, None)
                freed.append(oid)
            self._drop_owner(owner)
        return freed
