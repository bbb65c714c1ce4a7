"""The node daemon (one per machine).

Serves ``node.*``: worker registration, worker leases (local resource
ledger), the node's shared-memory object store (create, seal, get/pin,
release, free), worker log forwarding to drivers, node stats.  Calls
``control.register_node``/``control.heartbeat``/``control.actor_died`` on the
control service and ``worker.exit`` on its workers.  Owns the worker
processes and the arena file.
"""
