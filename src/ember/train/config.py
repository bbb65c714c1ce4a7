"""ScalingConfig: how many training workers a run has and what each one needs."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

_STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")


@dataclasses.dataclass
class ScalingConfig:
    """The workers of a training run: their number, resources and placement."""

    trainer_resources: dict[str, float] | None = None
    num_workers: int = 1
    use_gpu: bool = False
    resources_per_worker: dict[str, float] | None = None
    placement_strategy: str = "PACK"
    accelerator_type: str | None = None
    label_selector: Any = None
    use_tpu: bool = False
    topology: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.num_workers, int) or self.num_workers < 1:
            raise ValueError(
                f"num_workers must be a positive integer, got {self.num_workers!r}"
            )
        if self.placement_strategy not in _STRATEGIES:
            raise ValueError(
                f"placement_strategy must be one of {_STRATEGIES}, got "
                f"{self.placement_strategy!r}"
            )
        if self.use_tpu or self.topology:
            raise ValueError("ember has no TPU support: leave use_tpu/topology unset")
        if self.accelerator_type is not None:
            raise ValueError(
                "accelerator_type is not supported by ember yet: select nodes with "
                "resources_per_worker instead"
            )
        if self.label_selector is not None:
            raise ValueError(
                "label_selector is not supported by ember's trainers yet: select nodes "
                "with resources_per_worker (custom resources) instead"
            )
        if self.trainer_resources:
            warnings.warn(
                "ScalingConfig.trainer_resources is ignored: ember's trainer runs its "
                "coordination in the calling process, which reserves nothing",
                stacklevel=3,
            )
        for k, v in (self.resources_per_worker or {}).items():
            if v < 0:
                raise ValueError(f"resources_per_worker[{k!r}] is negative: {v}")

    @property
    def _resources_per_worker_not_none(self) -> dict[str, float]:
        """What each worker reserves: ``{"CPU": 1}`` (and one GPU with ``use_gpu``)
        unless ``resources_per_worker`` says otherwise."""
        if self.resources_per_worker is not None:
            out = {
                k.upper() if k in ("cpu", "gpu") else k: float(v)
                for k, v in self.resources_per_worker.items()
            }
            if self.use_gpu and not out.get("GPU"):
                out["GPU"] = 1.0
            return out
        return {"CPU": 1.0, "GPU": 1.0} if self.use_gpu else {"CPU": 1.0}

    @property
    def num_cpus_per_worker(self) -> float:
        return self._resources_per_worker_not_none.get("CPU", 0.0)

    @property
    def num_gpus_per_worker(self) -> float:
        return self._resources_per_worker_not_none.get("GPU", 0.0)

    @property
    def total_resources(self) -> dict[str, float]:
        out: dict[str, float] = dict(self.trainer_resources or {})
        for k, v in self._resources_per_worker_not_none.items():
            out[k] = out.get(k, 0.0) + v * self.num_workers
        return out

    def bundles(self) -> list[dict[str, float]]:
        """The placement group's bundles: one per worker."""
        per = {k: v for k, v in self._resources_per_worker_not_none.items() if v > 0}
        return [dict(per) or {"CPU": 0.001} for _ in range(self.num_workers)]
