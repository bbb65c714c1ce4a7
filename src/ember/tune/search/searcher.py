"""Search algorithms: the Searcher interface, BasicVariantGenerator and ConcurrencyLimiter."""

from __future__ import annotations

import copy
import random
from typing import Any

from ember.tune.search import variant_generator as vg

UNRESOLVED_SEARCH_SPACE = "unresolved search space"
UNDEFINED_SEARCH_SPACE = "undefined search space"
UNDEFINED_METRIC_MODE = "undefined metric or mode"


class SearchAlgorithm:
    """What the controller asks for new trials: ``next_trial()`` -> (config, tag)."""

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        return True

    def add_configurations(self, space: dict[str, Any], num_samples: int) -> None:
        raise NotImplementedError

    def next_trial(self, trial_id: str) -> tuple[dict[str, Any], dict[Any, Any]] | None:
        """A new trial's config and resolved values; None when none is ready now."""
        raise NotImplementedError

    def is_finished(self) -> bool:
        raise NotImplementedError

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        pass

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        pass


class BasicVariantGenerator(SearchAlgorithm):
    """Grid expansion times num_samples, random sampling of the other domains."""

    def __init__(
        self,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        max_concurrent: int = 0,
        constant_grid_search: bool = False,
        random_state: int | None = None,
    ) -> None:
        self._points = list(points_to_evaluate or [])
        self.max_concurrent = max_concurrent
        self._seed = random_state
        self._variants: list[tuple[dict[str, Any], dict[Any, Any]]] = []
        self._next = 0
        self._live: set[str] = set()

    def add_configurations(self, space: dict[str, Any], num_samples: int) -> None:
        rng_seed = self._seed
        points = self._points
        for point in points:
            merged = copy.deepcopy(space)
            merged.update(point)
            _, config = next(vg.generate_variants(merged, 1, rng_seed))
            self._variants.append((config, {(k,): v for k, v in point.items()}))
        left = max(num_samples - len(points), 0) if points else num_samples
        for resolved, config in vg.generate_variants(space, left, rng_seed):
            self._variants.append((config, resolved))

    def next_trial(self, trial_id: str) -> tuple[dict[str, Any], dict[Any, Any]] | None:
        if self._next >= len(self._variants):
            return None
        if self.max_concurrent and len(self._live) >= self.max_concurrent:
            return None
        variant = self._variants[self._next]
        self._next += 1
        self._live.add(trial_id)
        return variant

    def is_finished(self) -> bool:
        return self._next >= len(self._variants)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self._live.discard(trial_id)


class Searcher:
    """A model-based search: ``suggest(trial_id)`` returns a config (or None / FINISHED)."""

    FINISHED = "FINISHED"

    def __init__(self, metric: str | None = None, mode: str | None = None) -> None:
        if mode is not None and mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self._metric = metric
        self._mode = mode

    @property
    def metric(self) -> str | None:
        return self._metric

    @property
    def mode(self) -> str | None:
        return self._mode

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        if self._metric is None:
            self._metric = metric
        if self._mode is None:
            self._mode = mode
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        raise NotImplementedError

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        pass

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        pass


class ConcurrencyLimiter(Searcher):
    """At most ``max_concurrent`` of the wrapped searcher's trials run at once."""

    def __init__(self, searcher: Searcher, max_concurrent: int, batch: bool = False):
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1, got {max_concurrent}")
        super().__init__(searcher.metric, searcher.mode)
        self.searcher = searcher
        self.max_concurrent = max_concurrent
        self.batch = batch
        self.live_trials: set[str] = set()

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        super().set_search_properties(metric, mode, config, **spec)
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if len(self.live_trials) >= self.max_concurrent:
            return None
        suggestion = self.searcher.suggest(trial_id)
        if isinstance(suggestion, dict):
            self.live_trials.add(trial_id)
        return suggestion

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self.live_trials.discard(trial_id)
        self.searcher.on_trial_complete(trial_id, result, error)


class SearchGenerator(SearchAlgorithm):
    """Adapts a Searcher to the controller: num_samples suggestions merged into the space."""

    def __init__(self, searcher: Searcher) -> None:
        self.searcher = searcher
        self._space: dict[str, Any] = {}
        self._total = 0
        self._made = 0
        self._finished = False

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def add_configurations(self, space: dict[str, Any], num_samples: int) -> None:
        if vg.grid_leaves(space):
            raise ValueError(
                "Grid search parameters cannot be automatically converted to a "
                "search space for a Searcher; use BasicVariantGenerator for grids"
            )
        self._space = space
        self._total = num_samples

    def next_trial(self, trial_id: str) -> tuple[dict[str, Any], dict[Any, Any]] | None:
        if self.is_finished():
            return None
        suggestion = self.searcher.suggest(trial_id)
        if suggestion == Searcher.FINISHED:
            self._finished = True
            return None
        if not isinstance(suggestion, dict):
            return None
        self._made += 1
        config = copy.deepcopy(self._space)
        config.update(suggestion)
        # domains the searcher did not fill are sampled
        config, _ = vg.resolve(config, {}, random.Random())
        return config, {(k,): v for k, v in suggestion.items()}

    def is_finished(self) -> bool:
        return self._finished or self._made >= self._total

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self.searcher.on_trial_complete(trial_id, result, error)
