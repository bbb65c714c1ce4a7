"""Variant generation: expand a param_space's grids and sample its domains (pure)."""

from __future__ import annotations

import copy
import itertools
import random
from collections.abc import Iterator
from typing import Any

from ember.tune.search.sample import Domain

Path = tuple[Any, ...]


def _is_grid(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"grid_search"}


def _walk(space: Any, prefix: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every leaf of a nested dict/list space, with its path."""
    if _is_grid(space) or isinstance(space, Domain):
        yield prefix, space
    elif isinstance(space, dict):
        for key, value in space.items():
            yield from _walk(value, (*prefix, key))
    elif isinstance(space, list):
        for i, value in enumerate(space):
            yield from _walk(value, (*prefix, i))


def _assign(config: Any, path: Path, value: Any) -> None:
    for key in path[:-1]:
        config = config[key]
    config[path[-1]] = value


def grid_leaves(space: Any) -> list[tuple[Path, list[Any]]]:
    return [(p, v["grid_search"]) for p, v in _walk(space) if _is_grid(v)]


def domain_leaves(space: Any) -> list[tuple[Path, Domain]]:
    return [(p, v) for p, v in _walk(space) if isinstance(v, Domain)]


def count_variants(space: Any, num_samples: int) -> int:
    total = num_samples
    for _, values in grid_leaves(space):
        total *= len(values)
    return total


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4}"
    return str(value)


def experiment_tag(index: int, resolved: dict[Path, Any]) -> str:
    if not resolved:
        return str(index)
    parts = [f"{path[-1]}={format_value(v)}" for path, v in resolved.items()]
    return f"{index}_" + ",".join(parts)


def resolve(
    space: dict[str, Any], grid_choice: dict[Path, Any], rng: random.Random
) -> tuple[dict[str, Any], dict[Path, Any]]:
    """One config: grid values as chosen, domains sampled (sample_from last)."""
    config = copy.deepcopy(space)
    resolved: dict[Path, Any] = {}
    for path, value in grid_choice.items():
        _assign(config, path, value)
        resolved[path] = value
    leaves = domain_leaves(config)
    for path, domain in sorted(leaves, key=lambda leaf: leaf[1].is_function()):
        value = domain.sample(config, rng)
        _assign(config, path, value)
        resolved[path] = value
    # grid values resolved first in the tag, in their order; then samples
    return config, resolved


def generate_variants(
    space: dict[str, Any], num_samples: int = 1, seed: int | None = None
) -> Iterator[tuple[dict[Path, Any], dict[str, Any]]]:
    """Yield (resolved values, config) for num_samples x the grid, first key fastest."""
    rng = random.Random(seed) if seed is not None else random.Random()
    grids = grid_leaves(space)
    paths = [p for p, _ in grids]
    # itertools.product varies the LAST factor fastest: reverse to vary the first
    combos = list(itertools.product(*[values for _, values in reversed(grids)]))
    for _ in range(num_samples):
        for combo in combos:
            choice = dict(zip(reversed(paths), combo, strict=True))
            ordered = {p: choice[p] for p in paths}
            config, resolved = resolve(space, ordered, rng)
            yield resolved, config
