"""DataContext: the per-driver knobs of ember.data (Ray's names and defaults where they apply)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar


class ExecutionResources:
    """Limits on the resources a dataset's execution may use (None: no limit)."""

    def __init__(
        self,
        cpu: float | None = None,
        gpu: float | None = None,
        object_store_memory: float | None = None,
        memory: float | None = None,
    ) -> None:
        self.cpu = cpu
        self.gpu = gpu
        self.object_store_memory = object_store_memory
        self.memory = memory

    @classmethod
    def for_limits(
        cls,
        cpu: float | None = None,
        gpu: float | None = None,
        object_store_memory: float | None = None,
        memory: float | None = None,
    ) -> ExecutionResources:
        return cls(cpu, gpu, object_store_memory, memory)

    def __repr__(self) -> str:
        return (
            f"ExecutionResources(cpu={self.cpu}, gpu={self.gpu}, "
            f"object_store_memory={self.object_store_memory}, memory={self.memory})"
        )


class ExecutionOptions:
    """How one execution runs: resource limits, ordering and progress detail."""

    def __init__(
        self,
        resource_limits: ExecutionResources | None = None,
        exclude_resources: ExecutionResources | None = None,
        preserve_order: bool = False,
        actor_locality_enabled: bool = True,
        verbose_progress: bool | None = None,
        label_selector: dict[str, str] | None = None,
    ) -> None:
        self.resource_limits = (
            resource_limits if resource_limits is not None else ExecutionResources()
        )
        self.exclude_resources = (
            exclude_resources if exclude_resources is not None else ExecutionResources()
        )
        self.preserve_order = preserve_order
        self.actor_locality_enabled = actor_locality_enabled
        self.verbose_progress = bool(verbose_progress)
        self.label_selector = label_selector

    def __repr__(self) -> str:
        return (
            f"ExecutionOptions(resource_limits={self.resource_limits!r}, "
            f"preserve_order={self.preserve_order}, verbose_progress={self.verbose_progress})"
        )


_DEFAULT_TARGET_MAX_BLOCK_SIZE = 128 * 1024 * 1024


@dataclass
class DataContext:
    """Settings read when a dataset executes. ``DataContext.get_current()`` is the driver's.

    ember.data honours ``execution_options.resource_limits`` (``cpu`` caps concurrent
    tasks, ``object_store_memory`` is the streaming budget), ``enable_progress_bars``,
    ``enable_operator_progress_bars``, ``max_errored_blocks`` (that many failed blocks are
    skipped with a warning; -1: any number) and ``object_store_memory_fraction`` (the
    share of the store a pipeline may hold when no limit is set; ember's own knob).
    ``target_max_block_size`` and ``verbose_progress`` are accepted for Ray's scripts;
    ember does not split output blocks yet (one block per task).
    """

    target_max_block_size: int | None = _DEFAULT_TARGET_MAX_BLOCK_SIZE
    target_min_block_size: int = 1024 * 1024
    enable_progress_bars: bool = True
    enable_operator_progress_bars: bool = True
    use_ray_tqdm: bool = True
    max_errored_blocks: int = 0
    read_op_min_num_blocks: int = 200
    execution_options: ExecutionOptions = field(default_factory=ExecutionOptions)
    object_store_memory_fraction: float = 0.5
    _extra: dict[str, Any] = field(default_factory=dict)

    _current: ClassVar[DataContext | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @staticmethod
    def get_current() -> DataContext:
        with DataContext._lock:
            if DataContext._current is None:
                DataContext._current = DataContext()
            return DataContext._current

    @staticmethod
    def _set_current(context: DataContext) -> None:
        with DataContext._lock:
            DataContext._current = context

    def set_config(self, key: str, value: Any) -> None:
        self._extra[key] = value

    def get_config(self, key: str, default: Any = None) -> Any:
        return self._extra.get(key, default)
