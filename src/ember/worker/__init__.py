"""The worker process.

Serves ``worker.push_task``, ``worker.create_actor``, ``worker.cancel_task``
and ``worker.exit`` (plus the core worker's owner-side methods).  Calls
``node.register_worker`` and the node's object and log methods.  Owns the
objects its tasks create, and at most one actor instance.
"""
