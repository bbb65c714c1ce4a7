"""The control service (one per cluster, on the head node).

Serves ``control.*``: node membership, the internal key-value store (function
table, job config), jobs, and the actor directory with named actors and the
actor lifecycle (create, restart, kill).  Calls ``node.request_worker_lease``
on node daemons and ``worker.create_actor``/``worker.exit`` on workers.
"""
