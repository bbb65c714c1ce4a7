"""``ember.util.collective``'s functions: groups of actors and the collectives among them.

A process joins a group with :func:`init_collective_group` (inside each
actor) or is declared part of one from the driver with
:func:`create_collective_group` (each actor then joins at its first
collective).  Groups are per process, by name; every rank of a group must
call the same collectives in the same order.  The backends are looked up in
a registry: ember's own ``GLOO`` (:mod:`.collective_group.store_group`, over
the object store, needing nothing but numpy) is registered; ``NCCL`` is not
(ember has no GPU backend yet), so asking for it fails with a clear error.
"""

from __future__ import annotations

import threading
from typing import Any

import ember
from ember.util.collective import mailbox
from ember.util.collective.collective_group.base_collective_group import BaseGroup
from ember.util.collective.collective_group.store_group import StoreGroup, as_array
from ember.util.collective.types import (
    AllGatherOptions,
    AllReduceOptions,
    Backend,
    BarrierOptions,
    BroadcastOptions,
    RecvOptions,
    ReduceOp,
    ReduceOptions,
    ReduceScatterOptions,
    SendOptions,
)

_BACKENDS: dict[str, type[BaseGroup]] = {Backend.GLOO: StoreGroup}
_groups: dict[str, BaseGroup] = {}
_lock = threading.Lock()


def register_collective_backend(name: str, group_cls: type[BaseGroup]) -> None:
    """Make ``group_cls`` (a :class:`BaseGroup`) the backend called ``name``
    (register it in the driver and in every actor that uses it)."""
    if not (isinstance(group_cls, type) and issubclass(group_cls, BaseGroup)):
        raise TypeError(f"{group_cls} is not a subclass of BaseGroup")
    key = name.upper()
    if key in _BACKENDS:
        raise ValueError(f"Backend {key} already registered")
    _BACKENDS[key] = group_cls


def is_backend_available(backend: str) -> bool:
    """Whether ``backend`` is registered and can run in this process."""
    cls = _BACKENDS.get(backend.upper())
    return cls is not None and bool(cls.check_backend_availability())


def nccl_available() -> bool:
    return is_backend_available(Backend.NCCL)


def gloo_available() -> bool:
    return is_backend_available(Backend.GLOO)


def _backend_class(backend: str) -> type[BaseGroup]:
    key = str(backend).upper()
    if key == "TORCH_GLOO":
        key = Backend.GLOO
    cls = _BACKENDS.get(key)
    if cls is None:
        hint = (
            " (ember has no GPU backend yet: use backend='gloo')"
            if key == Backend.NCCL
            else ""
        )
        raise RuntimeError(f"Backend {key} is not available{hint}")
    if not cls.check_backend_availability():
        raise RuntimeError(f"Backend {key} is registered but not available here")
    return cls


def _check_inside_worker() -> None:
    ctx = ember.get_runtime_context()
    if ctx.get_task_id() is None and ctx.get_actor_id() is None:
        raise RuntimeError(
            "The collective APIs shall be only used inside an ember actor or task."
        )


def _make_group(
    backend: str,
    world_size: int,
    rank: int,
    group_name: str,
    gloo_timeout: int,
    rendezvous: str | None = None,
) -> BaseGroup:
    cls = _backend_class(backend)
    if cls is StoreGroup:
        return StoreGroup(world_size, rank, group_name, gloo_timeout, rendezvous)
    return cls(world_size, rank, group_name)


def is_group_initialized(group_name: str) -> bool:
    """Whether this process has joined the group ``group_name``."""
    with _lock:
        return group_name in _groups


def init_collective_group(
    world_size: int,
    rank: int,
    backend: str = Backend.NCCL,
    group_name: str = "default",
    gloo_timeout: int = 30000,
    *,
    rendezvous: str | None = None,
) -> None:
    """Join ``group_name`` as ``rank`` of ``world_size`` (call it in each actor).

    ``rendezvous`` (ember's own, default: the group name) names where the ranks
    meet across the cluster, so that two runs can each call their group
    ``"default"`` (ember.train does) without meeting each other.
    """
    _check_inside_worker()
    if not group_name or not isinstance(group_name, str):
        raise ValueError(f"group_name {group_name!r} needs to be a non-empty string.")
    if world_size <= 0:
        raise ValueError(f"world_size must be positive, got {world_size}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    with _lock:
        if group_name in _groups:
            raise RuntimeError("Trying to initialize a group a second time.")
        _groups[group_name] = _make_group(
            backend, world_size, rank, group_name, gloo_timeout, rendezvous
        )


def create_collective_group(
    actors: list[Any],
    world_size: int,
    ranks: list[int],
    backend: str = Backend.NCCL,
    group_name: str = "default",
    gloo_timeout: int = 30000,
) -> None:
    """Declare ``actors`` a group from the driver; each joins at its first collective."""
    if len(ranks) != len(actors):
        raise RuntimeError(
            f"Each actor should correspond to one rank. Got {len(ranks)} ranks "
            f"but {len(actors)} actors"
        )
    if set(ranks) != set(range(len(ranks))):
        raise RuntimeError(
            f"Ranks must be a permutation from 0 to {len(ranks) - 1}. Got {ranks}."
        )
    if world_size <= 0:
        raise RuntimeError(f"World size must be greater than zero. Got {world_size}.")
    if max(ranks) >= world_size:
        raise RuntimeError("Ranks cannot be greater than world_size.")
    _backend_class(backend)
    name = mailbox.box_name(group_name)
    try:
        ember.get_actor(name)
    except ValueError:
        pass
    else:
        raise RuntimeError("Trying to initialize a group twice.")
    box = mailbox.get_or_create(group_name)
    ids = [a._actor_id.hex() for a in actors]
    ember.get(box.set_info.remote(ids, world_size, ranks, backend, gloo_timeout))


def destroy_collective_group(group_name: str = "default") -> None:
    """Leave ``group_name`` in this process (the last rank out removes its mailbox)."""
    _check_inside_worker()
    with _lock:
        g = _groups.pop(group_name, None)
    if g is not None:
        g.destroy_group()


def get_group_handle(group_name: str = "default") -> BaseGroup:
    """This process's group ``group_name``, joined now if the driver declared it."""
    _check_inside_worker()
    with _lock:
        g = _groups.get(group_name)
        if g is not None:
            return g
        try:
            box = ember.get_actor(mailbox.box_name(group_name))
            info = ember.get(box.get_info.remote())
        except ValueError:
            info = None
        me = ember.get_runtime_context().get_actor_id()
        if info is None or me not in info[0]:
            raise RuntimeError(
                f"The collective group {group_name!r} is not initialized in the "
                "process: call init_collective_group() in it, or "
                "create_collective_group() with this actor from the driver."
            )
        ids, world_size, ranks, backend, gloo_timeout = info
        g = _groups[group_name] = _make_group(
            backend, world_size, ranks[ids.index(me)], group_name, gloo_timeout
        )
        return g


def get_rank(group_name: str = "default") -> int:
    """This process's rank in ``group_name``; -1 if it is not in the group."""
    _check_inside_worker()
    with _lock:
        g = _groups.get(group_name)
    return -1 if g is None else g.rank


def get_collective_group_size(group_name: str = "default") -> int:
    """The world size of ``group_name``; -1 if this process is not in the group."""
    _check_inside_worker()
    with _lock:
        g = _groups.get(group_name)
    return -1 if g is None else g.world_size


def _check_rank(g: BaseGroup, rank: int) -> None:
    if rank < 0:
        raise ValueError(f"rank '{rank}' is negative.")
    if rank >= g.world_size:
        raise ValueError(f"rank '{rank}' must be less than world size '{g.world_size}'")


def _check_list(tensor_list: Any, g: BaseGroup, what: str) -> None:
    if not isinstance(tensor_list, list):
        raise RuntimeError(
            f"The input must be a list of tensors. Got {type(tensor_list)}."
        )
    if len(tensor_list) != g.world_size:
        raise RuntimeError(
            f"The length of the tensor list for {what} ({len(tensor_list)}) must "
            f"equal the group's world size ({g.world_size})."
        )
    for t in tensor_list:
        as_array(t)


def allreduce(
    tensor: Any, group_name: str = "default", op: ReduceOp = ReduceOp.SUM
) -> None:
    """Combine ``tensor`` across the group with ``op``; every rank gets the result in place."""
    as_array(tensor)
    get_group_handle(group_name).allreduce([tensor], AllReduceOptions(reduceOp=op))


def barrier(group_name: str = "default") -> None:
    """Return once every rank of the group has called it."""
    get_group_handle(group_name).barrier(BarrierOptions())


def reduce(
    tensor: Any,
    dst_rank: int = 0,
    group_name: str = "default",
    op: ReduceOp = ReduceOp.SUM,
) -> None:
    """Combine ``tensor`` across the group into ``dst_rank``'s (the others' are unchanged)."""
    as_array(tensor)
    g = get_group_handle(group_name)
    _check_rank(g, dst_rank)
    g.reduce([tensor], ReduceOptions(reduceOp=op, root_rank=dst_rank))


def broadcast(tensor: Any, src_rank: int = 0, group_name: str = "default") -> None:
    """Copy ``src_rank``'s ``tensor`` into every rank's, in place."""
    as_array(tensor)
    g = get_group_handle(group_name)
    _check_rank(g, src_rank)
    g.broadcast([tensor], BroadcastOptions(root_rank=src_rank))


def allgather(tensor_list: list[Any], tensor: Any, group_name: str = "default") -> None:
    """Fill ``tensor_list[r]`` with rank ``r``'s ``tensor``, on every rank."""
    as_array(tensor)
    g = get_group_handle(group_name)
    _check_list(tensor_list, g, "allgather")
    g.allgather([tensor_list], [tensor], AllGatherOptions())


def reducescatter(
    tensor: Any,
    tensor_list: list[Any],
    group_name: str = "default",
    op: ReduceOp = ReduceOp.SUM,
) -> None:
    """Rank ``r`` gets, in ``tensor``, every rank's ``tensor_list[r]`` combined with ``op``."""
    as_array(tensor)
    g = get_group_handle(group_name)
    _check_list(tensor_list, g, "reducescatter")
    g.reducescatter([tensor], [tensor_list], ReduceScatterOptions(reduceOp=op))


def send(tensor: Any, dst_rank: int, group_name: str = "default") -> None:
    """Send ``tensor`` to ``dst_rank`` (which calls :func:`recv`)."""
    as_array(tensor)
    g = get_group_handle(group_name)
    _check_rank(g, dst_rank)
    if dst_rank == g.rank:
        raise RuntimeError(f"The destination rank '{dst_rank}' is self.")
    g.send([tensor], SendOptions(dst_rank=dst_rank))


def recv(tensor: Any, src_rank: int, group_name: str = "default") -> None:
    """Receive into ``tensor`` what ``src_rank`` sends."""
    as_array(tensor)
    g = get_group_handle(group_name)
    _check_rank(g, src_rank)
    if src_rank == g.rank:
        raise RuntimeError(f"The source rank '{src_rank}' is self.")
    g.recv([tensor], RecvOptions(src_rank=src_rank))


def _needs_nccl(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError(
        "Multi-GPU collectives need the NCCL backend, which ember does not have yet"
    )


allreduce_multigpu = reduce_multigpu = broadcast_multigpu = _needs_nccl
allgather_multigpu = reducescatter_multigpu = _needs_nccl
send_multigpu = recv_multigpu = _needs_nccl
