"""The node simulator: many simulated node daemons per process, on ember's own protocol.

``python -m sim`` (with ``bench`` on the path) runs one simulator process; see
:mod:`sim.process`.  :mod:`sim.node` is one simulated node, :mod:`sim.worker`
the no-op worker every simulated node hands out in its leases.
"""
