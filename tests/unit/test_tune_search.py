"""Search spaces and variant generation (pure: no cluster)."""

from __future__ import annotations

import math
import random

import pytest

from ember import tune
from ember.tune.search import BasicVariantGenerator, ConcurrencyLimiter, Searcher
from ember.tune.search.searcher import SearchGenerator
from ember.tune.search.variant_generator import (
    count_variants,
    experiment_tag,
    generate_variants,
)


def _samples(domain, n=300, seed=0):
    rng = random.Random(seed)
    return [domain.sample(None, rng) for _ in range(n)]


def test_float_domains_stay_in_their_bounds():
    assert all(1 <= v < 2 for v in _samples(tune.uniform(1, 2)))
    logs = _samples(tune.loguniform(1e-4, 1e-1))
    assert all(1e-4 <= v <= 1e-1 for v in logs)
    # log-uniform: about a third of the mass in each decade
    assert 60 < sum(v < 1e-3 for v in logs) < 140
    assert all(v in (0.0, 0.5, 1.0) for v in _samples(tune.quniform(0, 1, 0.5)))
    q = _samples(tune.qloguniform(1e-3, 1, 1e-3))
    assert all(abs(v / 1e-3 - round(v / 1e-3)) < 1e-6 for v in q)


def test_integer_domains():
    assert set(_samples(tune.randint(0, 3))) == {0, 1, 2}  # upper excluded
    assert set(_samples(tune.qrandint(0, 10, 5))) <= {0, 5, 10}  # upper included
    assert all(isinstance(v, int) for v in _samples(tune.lograndint(1, 1000)))
    assert all(1 <= v < 1000 for v in _samples(tune.lograndint(1, 1000)))


def test_normal_choice_and_sample_from():
    values = _samples(tune.randn(10, 2), n=2000)
    assert abs(sum(values) / len(values) - 10) < 0.3
    assert set(_samples(tune.choice(["a", "b"]))) == {"a", "b"}
    config = {"a": 3, "b": tune.sample_from(lambda spec: spec.config.a * 2)}
    _, variant = next(generate_variants(config))
    assert variant == {"a": 3, "b": 6}
    _, variant = next(generate_variants({"c": tune.sample_from(lambda: 7)}))
    assert variant == {"c": 7}


def test_bad_bounds_raise():
    with pytest.raises(ValueError, match="greater than 0"):
        tune.loguniform(0, 1)
    with pytest.raises(ValueError):
        tune.randint(3, 3)
    with pytest.raises(ValueError):
        tune.choice([])


def test_grid_times_num_samples_first_key_fastest():
    space = {
        "a": tune.grid_search([1, 2]),
        "nested": {"b": tune.grid_search(["x", "y"]), "u": tune.uniform(0, 1)},
        "list": [tune.grid_search([True, False])],
        "const": 5,
    }
    variants = [v for _, v in generate_variants(space, num_samples=2, seed=1)]
    assert len(variants) == count_variants(space, 2) == 16
    firsts = [(v["a"], v["nested"]["b"], v["list"][0]) for v in variants[:8]]
    assert firsts == [
        (1, "x", True), (2, "x", True), (1, "y", True), (2, "y", True),
        (1, "x", False), (2, "x", False), (1, "y", False), (2, "y", False),
    ]  # fmt: skip
    assert firsts == [(v["a"], v["nested"]["b"], v["list"][0]) for v in variants[8:]]
    assert all(v["const"] == 5 and 0 <= v["nested"]["u"] < 1 for v in variants)
    assert space["a"] == {"grid_search": [1, 2]}  # the space is not modified


def test_seeded_generation_repeats():
    space = {"u": tune.uniform(0, 1), "c": tune.choice(range(100))}
    first = [v for _, v in generate_variants(space, 5, seed=3)]
    assert first == [v for _, v in generate_variants(space, 5, seed=3)]
    assert first != [v for _, v in generate_variants(space, 5, seed=4)]


def test_experiment_tag_formats_like_ray():
    assert experiment_tag(1, {("x",): 2, ("y",): 0.48056881}) == "1_x=2,y=0.4806"
    assert experiment_tag(0, {}) == "0"


def test_basic_variant_generator_points_and_limit():
    gen = BasicVariantGenerator(points_to_evaluate=[{"a": 9}], max_concurrent=2)
    gen.add_configurations({"a": tune.choice([1, 2]), "b": 1}, num_samples=3)
    first = gen.next_trial("t0")
    assert first is not None
    assert first[0] == {"a": 9, "b": 1}
    assert gen.next_trial("t1") is not None
    assert gen.next_trial("t2") is None  # two live: the limit
    gen.on_trial_complete("t0")
    assert gen.next_trial("t2") is not None
    assert gen.is_finished()


class _Fixed(Searcher):
    def __init__(self):
        super().__init__()
        self.n = 0
        self.completed = []

    def suggest(self, trial_id):
        self.n += 1
        return {"x": self.n}

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.completed.append(trial_id)


def test_concurrency_limiter_holds_suggestions_back():
    inner = _Fixed()
    limiter = ConcurrencyLimiter(inner, max_concurrent=1)
    gen = SearchGenerator(limiter)
    gen.set_search_properties("m", "max", {})
    gen.add_configurations({"x": tune.uniform(0, 1), "y": tune.uniform(5, 6)}, 3)
    first = gen.next_trial("a")
    assert first is not None
    assert first[0]["x"] == 1
    assert 5 <= first[0]["y"] < 6  # what the searcher left out is sampled
    assert gen.next_trial("b") is None
    gen.on_trial_complete("a", {"m": 1})
    assert inner.completed == ["a"]
    assert gen.next_trial("b") is not None
    with pytest.raises(ValueError):
        ConcurrencyLimiter(inner, 0)


def test_searchers_reject_grid_spaces():
    with pytest.raises(ValueError, match="Grid search"):
        SearchGenerator(_Fixed()).add_configurations({"a": tune.grid_search([1])}, 1)


def test_optuna_search_needs_optuna():
    try:
        import optuna  # noqa: F401
    except ImportError:
        from ember.tune.search.optuna import OptunaSearch

        with pytest.raises(ImportError, match="pip install optuna"):
            OptunaSearch()
    else:  # pragma: no cover - optuna installed
        pytest.skip("optuna is installed")


def test_domains_reject_bad_types():
    assert math.isfinite(tune.uniform(0, 1).sample())
