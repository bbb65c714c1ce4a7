"""Trainables: the Trainable class, and with_parameters / with_resources wrappers."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import ember


class Trainable:
    """A class trainable: ``setup(config)`` once, then ``step()`` per iteration.

    Override ``save_checkpoint(checkpoint_dir)`` / ``load_checkpoint(checkpoint)``
    to be checkpointed (and so paused, retried and exploited by PBT), and
    ``cleanup()`` to release what setup() acquired.
    """

    def __init__(self, config: dict[str, Any] | None = None, **_: Any) -> None:
        self.config: dict[str, Any] = dict(config or {})
        self.training_iteration = 0
        self.trial_name = ""
        self.trial_id = ""
        self.logdir = ""
        self.setup(self.config)

    @property
    def iteration(self) -> int:
        return self.training_iteration

    @property
    def trial_resources(self) -> dict[str, float]:
        return {}

    def setup(self, config: dict[str, Any]) -> None:
        """Acquire what the trial needs (called once, from __init__)."""

    def step(self) -> dict[str, Any]:
        """Run one iteration; return its metrics."""
        raise NotImplementedError(f"{type(self).__name__} must implement step()")

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any] | None:
        """Write the state into ``checkpoint_dir`` (or return a small dict of it)."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement save_checkpoint()"
        )

    def load_checkpoint(self, checkpoint: dict[str, Any] | str | None) -> None:
        """Restore what save_checkpoint() wrote (a dir path, or the dict it returned)."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement load_checkpoint()"
        )

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Adopt a new config in place (False: the trial is restarted instead)."""
        return False

    def cleanup(self) -> None:
        """Release what setup() acquired (called when the trial ends)."""

    @classmethod
    def default_resource_request(cls, config: dict[str, Any]) -> Any:
        return None


def is_class_trainable(trainable: Any) -> bool:
    return inspect.isclass(trainable) and issubclass(trainable, Trainable)


def trainable_name(trainable: Any) -> str:
    if isinstance(trainable, str):
        return trainable
    return str(getattr(trainable, "__name__", type(trainable).__name__))


def with_parameters(trainable: Any, **kwargs: Any) -> Any:
    """A trainable that receives ``kwargs`` (put in the object store once) after config."""
    refs = {name: ember.put(value) for name, value in kwargs.items()}
    resources = getattr(trainable, "_tune_resources", None)
    if is_class_trainable(trainable):
        base = trainable

        class _WithParameters(base):  # type: ignore[valid-type,misc]
            def setup(self, config: dict[str, Any]) -> None:
                values = {k: ember.get(r) for k, r in refs.items()}
                base.setup(self, config, **values)

        _WithParameters.__name__ = base.__name__
        _WithParameters.__qualname__ = base.__qualname__
        return _WithParameters
    if not callable(trainable):
        raise TypeError(f"with_parameters() needs a trainable, got {trainable!r}")

    @functools.wraps(trainable)
    def inner(config: dict[str, Any]) -> Any:
        values = {k: ember.get(r) for k, r in refs.items()}
        return trainable(config, **values)

    if resources is not None:
        inner._tune_resources = resources  # type: ignore[attr-defined]
    return inner


class PlacementGroupFactory:
    """Resources for a trial as bundles (ember sums them into the trial actor's request)."""

    def __init__(
        self, bundles: list[dict[str, float]], strategy: str = "PACK", **_: Any
    ) -> None:
        if not bundles:
            raise ValueError("PlacementGroupFactory needs at least one bundle")
        self.bundles = [dict(b) for b in bundles]
        self.strategy = strategy

    @property
    def required_resources(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for bundle in self.bundles:
            for key, amount in bundle.items():
                total[key.upper() if key.lower() in ("cpu", "gpu") else key] = (
                    total.get(key, 0.0) + amount
                )
        return total

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PlacementGroupFactory)
            and self.bundles == other.bundles
            and self.strategy == other.strategy
        )

    def __repr__(self) -> str:
        return (
            f"PlacementGroupFactory(bundles={self.bundles}, strategy={self.strategy})"
        )


def normalize_resources(spec: Any) -> dict[str, float]:
    """A resources spec (dict, PlacementGroupFactory) as {"CPU": n, "GPU": n, ...}."""
    if spec is None:
        return {"CPU": 1.0}
    if isinstance(spec, PlacementGroupFactory):
        return spec.required_resources
    if not isinstance(spec, dict):
        raise TypeError(
            "with_resources() takes a dict, a PlacementGroupFactory or a callable, "
            f"got {type(spec).__name__}"
        )
    out: dict[str, float] = {}
    for key, amount in spec.items():
        if not isinstance(amount, int | float) or amount < 0:
            raise ValueError(f"resource {key!r} needs an amount >= 0, got {amount!r}")
        name = key.upper() if key.lower() in ("cpu", "gpu") else key
        out[name] = float(amount)
    out.setdefault("CPU", 0.0 if out else 1.0)
    return out


def with_resources(trainable: Any, resources: Any) -> Any:
    """The trainable with each trial reserving ``resources`` ({"cpu": 2, "gpu": 1})."""
    if not callable(resources):
        normalize_resources(resources)  # fail early on bad input
    if is_class_trainable(trainable):
        base = trainable
        wrapped: Any = type(base.__name__, (base,), {"_tune_resources": resources})
        wrapped.__qualname__ = base.__qualname__
        return wrapped

    @functools.wraps(trainable)
    def inner(*args: Any, **kwargs: Any) -> Any:
        return trainable(*args, **kwargs)

    inner._tune_resources = resources  # type: ignore[attr-defined]
    return inner


def resources_of(trainable: Any, config: dict[str, Any]) -> dict[str, float]:
    spec: Any = getattr(trainable, "_tune_resources", None)
    if callable(spec) and not isinstance(spec, PlacementGroupFactory):
        spec = spec(config)
    if spec is None and is_class_trainable(trainable):
        spec = trainable.default_resource_request(config)
    return normalize_resources(spec)


FunctionTrainable = Callable[[dict[str, Any]], Any]
