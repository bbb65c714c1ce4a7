"""The logical plan of a Dataset (source + operators) and the fusion rules that turn it into stages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ember.data.block import BlockMetadata


@dataclass(frozen=True)
class ReadTask:
    """One unit of reading: a picklable callable that returns a list of blocks."""

    read: Callable[[], list[Any]]
    num_rows: int | None = None
    size_bytes: int | None = None


@dataclass(frozen=True)
class Source:
    """Where a plan starts: read tasks (lazy) or blocks already in the object store."""

    name: str
    read_tasks: tuple[ReadTask, ...] | None = None
    refs: tuple[Any, ...] | None = None
    metadata: tuple[BlockMetadata, ...] | None = None
    #: the input files of a file read
    files: tuple[str, ...] = ()

    def known_num_rows(self) -> int | None:
        if self.metadata is not None:
            return sum(m.num_rows for m in self.metadata)
        if self.read_tasks is not None and all(
            t.num_rows is not None for t in self.read_tasks
        ):
            return sum(t.num_rows or 0 for t in self.read_tasks)
        return None

    def num_inputs(self) -> int:
        if self.refs is not None:
            return len(self.refs)
        return len(self.read_tasks or ())


@dataclass(frozen=True)
class ActorPoolSpec:
    """Run a callable class on a pool of min_size..max_size actors."""

    min_size: int
    max_size: int


@dataclass(frozen=True)
class MapSpec:
    """One map-like operator: how to call the user's function on a block."""

    name: str
    #: "rows" (map), "flat" (flat_map), "filter", "batches" (map_batches, add_column, ...)
    kind: str
    fn: Any
    fn_args: tuple[Any, ...] = ()
    fn_kwargs: dict[str, Any] = field(default_factory=dict)
    fn_constructor_args: tuple[Any, ...] = ()
    fn_constructor_kwargs: dict[str, Any] = field(default_factory=dict)
    batch_size: int | None = None
    batch_format: str = "numpy"
    #: None: tasks; an ActorPoolSpec: actors (callable classes only)
    pool: ActorPoolSpec | None = None
    #: remote options for the task/actor (num_cpus, num_gpus, memory, resources, max_retries...)
    remote_args: dict[str, Any] = field(default_factory=dict)
    #: at most this many tasks at once (TaskPoolStrategy(size) / concurrency=n)
    task_pool_size: int | None = None

    @property
    def is_class(self) -> bool:
        return isinstance(self.fn, type)


@dataclass(frozen=True)
class LimitOp:
    limit: int


@dataclass(frozen=True)
class AllToAllOp:
    """A barrier: takes all input block refs, returns new block refs."""

    name: str
    fn: Callable[[list[Any]], list[Any]]


Op = MapSpec | LimitOp | AllToAllOp


@dataclass(frozen=True)
class Plan:
    source: Source
    ops: tuple[Op, ...] = ()

    def with_op(self, op: Op) -> Plan:
        return Plan(self.source, (*self.ops, op))

    def last_barrier(self) -> int:
        """Index of the last all-to-all operator, or -1."""
        for i in range(len(self.ops) - 1, -1, -1):
            if isinstance(self.ops[i], AllToAllOp):
                return i
        return -1

    def op_names(self) -> list[str]:
        names = [self.source.name]
        for op in self.ops:
            names.append(
                op.name if not isinstance(op, LimitOp) else f"limit={op.limit}"
            )
        return names


@dataclass
class Stage:
    """A physical operator: fused map specs run as tasks or on an actor pool, or a limit."""

    ops: list[MapSpec]
    #: the source's name when this stage runs the read tasks
    read_name: str | None = None
    pool: ActorPoolSpec | None = None
    limit: int | None = None
    remote_args: dict[str, Any] = field(default_factory=dict)

    @property
    def task_pool_size(self) -> int | None:
        sizes = [op.task_pool_size for op in self.ops if op.task_pool_size is not None]
        return min(sizes) if sizes else None

    @property
    def name(self) -> str:
        if self.limit is not None:
            return f"limit={self.limit}"
        names = [op.name for op in self.ops]
        return "->".join([self.read_name, *names] if self.read_name else names)


def _resource_key(args: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("num_cpus", "num_gpus", "memory", "resources", "scheduling_strategy")
    return tuple(repr(args.get(k)) for k in keys)


def fuse(source_name: str, reads: bool, ops: list[Op]) -> list[Stage]:
    """Fuse map operators into stages.

    Rules: a read and the task maps after it share one task; consecutive task maps with
    the same resources share one task; a callable class starts a new stage that runs on
    an actor pool, and the task maps after it (same resources) run inside those actors;
    a limit is a stage of its own. ``ops`` holds no all-to-all operator (those are
    barriers the Dataset executes before).
    """
    stages: list[Stage] = []
    if reads:
        stages.append(Stage(ops=[], read_name=source_name))
    for op in ops:
        if isinstance(op, LimitOp):
            stages.append(Stage(ops=[], limit=op.limit))
            continue
        assert isinstance(op, MapSpec)
        last = stages[-1] if stages else None
        fusable = (
            last is not None
            and last.limit is None
            and op.pool is None
            and (
                not last.ops
                or _resource_key(last.remote_args) == _resource_key(op.remote_args)
            )
        )
        if fusable and last is not None:
            if not last.ops:
                last.remote_args = dict(op.remote_args)
            last.ops.append(op)
        else:
            stages.append(
                Stage(ops=[op], pool=op.pool, remote_args=dict(op.remote_args))
            )
    return stages
