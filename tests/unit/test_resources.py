"""Tests for fixed-point resource arithmetic (``ember.scheduler.resources``)."""

from __future__ import annotations

from hypothesis import given, strategies as st

from ember.scheduler.resources import SCALE, add, describe, fits, subtract


def test_resources_tenths_add_up_exactly() -> None:
    avail: dict[str, float] = {}
    for _ in range(10):
        add(avail, {"CPU": 0.1})
    assert avail == {"CPU": 1.0}
    assert sum([0.1] * 10) != 1.0  # what plain floats would have given
    for _ in range(10):
        assert fits({"CPU": 0.1}, avail)
        subtract(avail, {"CPU": 0.1})
    assert avail == {"CPU": 0.0}
    assert not fits({"CPU": 0.1}, avail)


def test_resources_fits_compares_every_positive_amount() -> None:
    avail = {"CPU": 2.0, "GPU": 0.5, "custom": 1.0}
    assert fits({"CPU": 2.0}, avail)
    assert fits({"CPU": 1.5, "GPU": 0.5}, avail)
    assert not fits({"CPU": 2.0001}, avail)
    assert not fits({"GPU": 1.0}, avail)
    assert not fits({"TPU": 1.0}, avail)  # absent counts as zero
    assert fits({}, avail)
    assert fits({"TPU": 0.0, "CPU": -1.0}, avail)  # non-positive asks nothing


def test_resources_fits_rounds_to_the_granularity() -> None:
    assert fits({"CPU": 0.1}, {"CPU": 0.3 - 0.2})  # 0.09999999999999998
    assert fits({"CPU": 0.00001}, {})  # below 0.0001 rounds to nothing


def test_resources_subtract_and_add_touch_only_positive_keys() -> None:
    avail = {"CPU": 4.0, "memory": 100.0}
    subtract(avail, {"CPU": 1.5, "memory": 0.0, "GPU": -1.0})
    assert avail == {"CPU": 2.5, "memory": 100.0}
    add(avail, {"GPU": 1.0})
    assert avail == {"CPU": 2.5, "memory": 100.0, "GPU": 1.0}


amounts = st.integers(min_value=1, max_value=10 * SCALE).map(lambda n: n / SCALE)


@given(start=amounts, requests=st.lists(amounts, max_size=30))
def test_resources_subtract_then_add_restores_exactly(
    start: float, requests: list[float]
) -> None:
    avail = {"CPU": start}
    for r in requests:
        subtract(avail, {"CPU": r})
    for r in reversed(requests):
        add(avail, {"CPU": r})
    assert avail == {"CPU": start}


@given(parts=st.lists(amounts, min_size=1, max_size=30))
def test_resources_fits_after_adding_the_parts(parts: list[float]) -> None:
    avail: dict[str, float] = {}
    for p in parts:
        add(avail, {"X": p})
    assert fits({"X": avail["X"]}, avail)
    assert round(avail["X"] * SCALE) == sum(round(p * SCALE) for p in parts)


def test_resources_describe() -> None:
    assert describe({"GPU": 2.0, "CPU": 1.0}) == "CPU: 1, GPU: 2"
    assert describe({"CPU": 0.5, "memory": 0.0}) == "CPU: 0.5"
    assert describe({}) == "nothing"
    assert describe({"CPU": 0.0}) == "nothing"
