"""Search algorithms: grid/random variant generation, Searchers and ConcurrencyLimiter."""

from __future__ import annotations

from typing import Any

from ember.tune.search.sample import grid_search
from ember.tune.search.searcher import (
    UNDEFINED_METRIC_MODE,
    UNDEFINED_SEARCH_SPACE,
    UNRESOLVED_SEARCH_SPACE,
    BasicVariantGenerator,
    ConcurrencyLimiter,
    SearchAlgorithm,
    Searcher,
    SearchGenerator,
)


def create_searcher(search_alg: str, **kwargs: Any) -> Any:
    """A search algorithm by its short name ("variant_generator", "random", "optuna")."""
    if search_alg in ("variant_generator", "random"):
        return BasicVariantGenerator(**kwargs)
    if search_alg == "optuna":
        from ember.tune.search.optuna import OptunaSearch

        return OptunaSearch(**kwargs)
    raise ValueError(
        "The `search_alg` argument must be one of ['optuna', 'random', "
        f"'variant_generator'] in ember. Got: {search_alg}"
    )


__all__ = [
    "UNDEFINED_METRIC_MODE",
    "UNDEFINED_SEARCH_SPACE",
    "UNRESOLVED_SEARCH_SPACE",
    "BasicVariantGenerator",
    "ConcurrencyLimiter",
    "SearchAlgorithm",
    "SearchGenerator",
    "Searcher",
    "create_searcher",
    "grid_search",
]
