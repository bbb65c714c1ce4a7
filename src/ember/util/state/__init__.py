"""The state API (Ray's ``ray.util.state``): list, get and summarize what the cluster runs.

Every call takes ``address`` (None: this process's cluster after
``ember.init()``, else the cluster recorded on this machine, else
``HOST:PORT``) and ``timeout``; list calls take ``filters``, ``limit``,
``detail`` and ``raise_on_missing_output``.  See ``common.py`` for the rules
they share and ``client.py`` for how a call reaches the cluster.
"""

from __future__ import annotations

from ember.util.state.actors import get_actor, list_actors, summarize_actors
from ember.util.state.client import StateClient
from ember.util.state.jobs import get_job, list_jobs
from ember.util.state.nodes import get_node, list_nodes
from ember.util.state.placement_groups import (
    get_placement_group,
    list_placement_groups,
)
from ember.util.state.tasks import get_task, list_tasks, summarize_tasks
from ember.util.state.workers import get_worker, list_workers

StateApiClient = StateClient

__all__ = [
    "StateApiClient",
    "get_actor",
    "get_job",
    "get_node",
    "get_placement_group",
    "get_task",
    "get_worker",
    "list_actors",
    "list_jobs",
    "list_nodes",
    "list_placement_groups",
    "list_tasks",
    "list_workers",
    "summarize_actors",
    "summarize_tasks",
]
