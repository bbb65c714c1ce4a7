"""ember: a distributed computing engine for Python with Ray's API.

``import ember as ray`` runs a Ray program: tasks (``@ember.remote``
functions), actors (``@ember.remote`` classes) and a shared-memory object
store, on one machine (``ember.init()``) or a cluster.
"""

from __future__ import annotations

from typing import Any

from ember._version import __version__ as __version__
from ember.api.actor import method as method
from ember.api.actor_ops import get_actor as get_actor, kill as kill
from ember.api.context import (
    available_resources as available_resources,
    cluster_resources as cluster_resources,
    get_runtime_context as get_runtime_context,
    nodes as nodes,
)
from ember.api.extras import (
    LOCAL_MODE as LOCAL_MODE,
    SCRIPT_MODE as SCRIPT_MODE,
    WORKER_MODE as WORKER_MODE,
    LoggingConfig as LoggingConfig,
    client as client,
    get_gpu_ids as get_gpu_ids,
    timeline as timeline,
)
from ember.api.init import (
    init as init,
    is_initialized as is_initialized,
    shutdown as shutdown,
)
from ember.api.objects import cancel as cancel, get as get, put as put, wait as wait
from ember.api.placement_group import PlacementGroupID as PlacementGroupID
from ember.api.remote import remote as remote
from ember.common.ids import (
    ActorClassID as ActorClassID,
    ActorID as ActorID,
    FunctionID as FunctionID,
    JobID as JobID,
    NodeID as NodeID,
    TaskID as TaskID,
    UniqueID as UniqueID,
    WorkerID as WorkerID,
)
from ember.runtime.dynamic_generator import (
    DynamicObjectRefGenerator as DynamicObjectRefGenerator,
)
from ember.runtime.object_ref import (
    ObjectRef as ObjectRef,
    ObjectRefGenerator as ObjectRefGenerator,
)

#: Ray's name for the class of object ids: the ObjectRef class itself.
ObjectID = ObjectRef

__all__ = [
    "LOCAL_MODE",
    "SCRIPT_MODE",
    "WORKER_MODE",
    "ActorClassID",
    "ActorID",
    "DynamicObjectRefGenerator",
    "FunctionID",
    "JobID",
    "LoggingConfig",
    "NodeID",
    "ObjectID",
    "ObjectRef",
    "ObjectRefGenerator",
    "PlacementGroupID",
    "TaskID",
    "UniqueID",
    "WorkerID",
    "__version__",
    "actor",
    "available_resources",
    "cancel",
    "client",
    "cluster_resources",
    "get",
    "get_actor",
    "get_gpu_ids",
    "get_runtime_context",
    "init",
    "is_initialized",
    "kill",
    "method",
    "nodes",
    "put",
    "remote",
    "shutdown",
    "timeline",
    "util",
    "wait",
]

_LAZY = {
    "util",
    "exceptions",
    "actor",
    "runtime_context",
    "cluster_utils",
    "remote_function",
    "autoscaler",
    "data",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"ember.{name}")
    raise AttributeError(f"module 'ember' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def _private_list_named_actors(all_namespaces: bool) -> list[Any]:
    from ember.api.context import list_named_actors

    return list_named_actors(all_namespaces)


def _private_node_ip_address() -> str:
    from ember.api.runtime_access import runtime

    return runtime().node_ip
