"""The interface every collective backend implements (register one with
``ember.util.collective.register_collective_backend``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from ember.util.collective.types import (
    AllGatherOptions,
    AllReduceOptions,
    BarrierOptions,
    BroadcastOptions,
    RecvOptions,
    ReduceOptions,
    ReduceScatterOptions,
    SendOptions,
)


class BaseGroup(ABC):
    """One process's membership of one collective group."""

    def __init__(self, world_size: int, rank: int, group_name: str) -> None:
        self._world_size = world_size
        self._rank = rank
        self._group_name = group_name

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def world_size(self) -> int:
        return self._world_size

    @property
    def group_name(self) -> str:
        return self._group_name

    def destroy_group(self) -> None:  # noqa: B027 (optional for a backend)
        """Release what the group holds in this process (nothing by default)."""

    @classmethod
    @abstractmethod
    def backend(cls) -> str:
        """The backend's name (as registered)."""

    @classmethod
    @abstractmethod
    def check_backend_availability(cls) -> bool:
        """Whether this process can run the backend."""

    @abstractmethod
    def allreduce(self, tensors: list[Any], opts: AllReduceOptions) -> None: ...

    @abstractmethod
    def barrier(self, opts: BarrierOptions) -> None: ...

    @abstractmethod
    def reduce(self, tensors: list[Any], opts: ReduceOptions) -> None: ...

    @abstractmethod
    def allgather(
        self, tensor_lists: list[list[Any]], tensors: list[Any], opts: AllGatherOptions
    ) -> None: ...

    @abstractmethod
    def broadcast(self, tensors: list[Any], opts: BroadcastOptions) -> None: ...

    @abstractmethod
    def reducescatter(
        self,
        tensors: list[Any],
        tensor_lists: list[list[Any]],
        opts: ReduceScatterOptions,
    ) -> None: ...

    @abstractmethod
    def send(self, tensors: list[Any], opts: SendOptions) -> None: ...

    @abstractmethod
    def recv(self, tensors: list[Any], opts: RecvOptions) -> None: ...
