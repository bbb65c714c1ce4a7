"""The workers of one attempt of a training run: gang-scheduled, ranked, grouped.

:class:`WorkerGroup` reserves one placement-group bundle per worker (all or
nothing, in ``ScalingConfig.placement_strategy``), starts a
:class:`~ember.train.worker.TrainWorker` actor in each, ranks them (world
rank by bundle; node rank by the order nodes first appear; local rank within
a node) and has them join one collective group, ``"default"`` to the user's
code, met at a rendezvous of its own.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import ember
from ember.train.config import ScalingConfig
from ember.train.worker import TrainWorkerActor
from ember.util.placement_group import placement_group, remove_placement_group
from ember.util.scheduling_strategies import PlacementGroupSchedulingStrategy

#: how long the workers' resources may take to become available
RESERVE_TIMEOUT_S = 120.0


class Ranks:
    """The place of every worker: world, local and node ranks."""

    def __init__(self, nodes: list[str]) -> None:
        order: dict[str, int] = {}
        for n in nodes:
            order.setdefault(n, len(order))
        self.world_size = len(nodes)
        self.node_rank = [order[n] for n in nodes]
        self.local_rank = [nodes[:i].count(n) for i, n in enumerate(nodes)]
        self.local_world_size = [nodes.count(n) for n in nodes]


class WorkerGroup:
    """The actors of one attempt (made at once, removed together)."""

    def __init__(self, scaling: ScalingConfig) -> None:
        bundles = scaling.bundles()
        self.pg = placement_group(bundles, strategy=scaling.placement_strategy)
        ready, _ = ember.wait([self.pg.ready()], timeout=RESERVE_TIMEOUT_S)
        if not ready:
            remove_placement_group(self.pg)
            raise RuntimeError(
                f"the training run's {scaling.num_workers} workers need "
                f"{bundles[0]} each ({scaling.placement_strategy}), which the "
                f"cluster could not give within {RESERVE_TIMEOUT_S:g} s: lower "
                "num_workers or resources_per_worker, or add nodes"
            )
        self.workers: list[Any] = []
        for i, bundle in enumerate(bundles):
            rest = {k: v for k, v in bundle.items() if k not in ("CPU", "GPU")}
            self.workers.append(
                TrainWorkerActor.options(
                    num_cpus=bundle.get("CPU", 0),
                    num_gpus=bundle.get("GPU", 0),
                    resources=rest or None,
                    scheduling_strategy=PlacementGroupSchedulingStrategy(
                        self.pg, placement_group_bundle_index=i
                    ),
                ).remote()
            )
        where = ember.get([w.where.remote() for w in self.workers])
        self.nodes = [node for node, _ in where]
        self.ranks = Ranks(self.nodes)
        rendezvous = f"ember-train-{uuid.uuid4().hex[:12]}"
        ember.get(
            [
                w.join_group.remote(len(self.workers), rank, rendezvous)
                for rank, w in enumerate(self.workers)
            ]
        )

    def shutdown(self) -> None:
        """Stop the loops, kill the actors, give back the resources."""
        for w in self.workers:
            with contextlib.suppress(Exception):  # a dead worker has nothing to stop
                ember.get(w.stop.remote(), timeout=10)
            ember.kill(w)
        self.workers = []
        remove_placement_group(self.pg)
