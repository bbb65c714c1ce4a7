"""The autoscaler: grows and shrinks a cluster with its demands (Ray's autoscaler).

``config`` reads a cluster config, ``policy`` (with ``binpack``) decides
what to start and stop without any I/O, ``monitor`` is the shell that runs
it every tick against the control service and a node provider
(``local_provider``, ``kubernetes_provider``), ``service`` is its process
(``python -m ember.autoscaler``) and ``sdk`` has ``request_resources``.
See docs/seams/autoscale.md.
"""
