"""The names of ``ember.util.collective``'s backends, reduce operations and op options."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Backend:
    """A backend's name: ``Backend("gloo")`` is ``Backend.GLOO`` (``"GLOO"``)."""

    NCCL = "NCCL"
    GLOO = "GLOO"
    UNRECOGNIZED = "unrecognized"

    def __new__(cls, name: str) -> str:  # type: ignore[misc]
        upper = name.upper()
        if upper == "TORCH_GLOO":  # Ray's other spelling of the CPU backend
            return cls.GLOO
        if upper in (cls.NCCL, cls.GLOO):
            return upper
        raise ValueError(
            f"Unrecognized backend: {name!r}. Only NCCL and GLOO are supported "
            "(ember runs GLOO; NCCL needs GPUs)"
        )


class ReduceOp(Enum):
    """How values from every rank combine."""

    SUM = 0
    PRODUCT = 1
    MIN = 2
    MAX = 3


@dataclass
class AllReduceOptions:
    reduceOp: ReduceOp = ReduceOp.SUM


@dataclass
class ReduceOptions:
    reduceOp: ReduceOp = ReduceOp.SUM
    root_rank: int = 0
    root_tensor: int = 0


@dataclass
class BroadcastOptions:
    root_rank: int = 0
    root_tensor: int = 0


@dataclass
class AllGatherOptions:
    pass


@dataclass
class ReduceScatterOptions:
    reduceOp: ReduceOp = ReduceOp.SUM


@dataclass
class BarrierOptions:
    pass


@dataclass
class SendOptions:
    dst_rank: int = 0


@dataclass
class RecvOptions:
    src_rank: int = 0
