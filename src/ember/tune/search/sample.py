"""Search-space domains: the distributions ``tune.uniform`` & co. return, and grid_search."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any


class Domain:
    """A distribution to sample one config value from."""

    def sample(self, config: dict[str, Any] | None = None, rng: random.Random | None = None) -> Any:  # fmt: skip
        raise NotImplementedError

    def is_grid(self) -> bool:
        return False

    def is_function(self) -> bool:
        return False


def _rng(rng: random.Random | None) -> random.Random:
    return rng if rng is not None else random._inst


def _quantize(value: float, q: float | None) -> float:
    if q is None:
        return value
    return round(value / q) * q


class Float(Domain):
    """A float in [lower, upper): uniform, log-uniform or normal, optionally quantized."""

    def __init__(
        self,
        lower: float,
        upper: float,
        *,
        log_base: float | None = None,
        q: float | None = None,
    ) -> None:
        if log_base is not None and lower <= 0:
            raise ValueError(
                f"LogUniform requires a lower bound greater than 0, got {lower}"
            )
        if lower > upper:
            raise ValueError(f"lower bound {lower} is above upper bound {upper}")
        self.lower, self.upper, self.log_base, self.q = lower, upper, log_base, q

    def sample(self, config: dict[str, Any] | None = None, rng: random.Random | None = None) -> float:  # fmt: skip
        r = _rng(rng)
        if self.log_base is None:
            value = r.uniform(self.lower, self.upper)
        else:
            lo = math.log(self.lower, self.log_base)
            hi = math.log(self.upper, self.log_base)
            value = self.log_base ** r.uniform(lo, hi)
        value = _quantize(value, self.q)
        return min(max(value, self.lower), self.upper) if self.q else value

    def __repr__(self) -> str:
        kind = "LogUniform" if self.log_base else "Uniform"
        return f"<Float {kind}({self.lower}, {self.upper}, q={self.q})>"


class Normal(Domain):
    """A float drawn from N(mean, sd), optionally quantized."""

    def __init__(self, mean: float, sd: float, q: float | None = None) -> None:
        self.mean, self.sd, self.q = mean, sd, q

    def sample(self, config: dict[str, Any] | None = None, rng: random.Random | None = None) -> float:  # fmt: skip
        return _quantize(_rng(rng).gauss(self.mean, self.sd), self.q)


class Integer(Domain):
    """An int in [lower, upper) (upper excluded, as Ray's), uniform or log, quantized."""

    def __init__(
        self, lower: int, upper: int, *, log_base: float | None = None, q: int = 1
    ) -> None:
        if lower >= upper:
            raise ValueError(f"randint needs lower < upper, got [{lower}, {upper})")
        if log_base is not None and lower <= 0:
            raise ValueError(
                f"LogUniform requires a lower bound greater than 0, got {lower}"
            )
        self.lower, self.upper, self.log_base, self.q = lower, upper, log_base, q

    def sample(self, config: dict[str, Any] | None = None, rng: random.Random | None = None) -> int:  # fmt: skip
        r = _rng(rng)
        if self.log_base is None:
            value = float(r.randrange(self.lower, self.upper))
        else:
            lo = math.log(self.lower, self.log_base)
            hi = math.log(self.upper, self.log_base)
            value = float(int(self.log_base ** r.uniform(lo, hi)))
        if self.q != 1:
            value = round(value / self.q) * self.q
        return int(min(max(value, self.lower), self.upper - (self.q == 1)))


class Categorical(Domain):
    """One of a list of values, uniformly."""

    def __init__(self, categories: Sequence[Any]) -> None:
        if not categories:
            raise ValueError("choice() needs at least one category")
        self.categories = list(categories)

    def sample(self, config: dict[str, Any] | None = None, rng: random.Random | None = None) -> Any:  # fmt: skip
        return _rng(rng).choice(self.categories)

    def __len__(self) -> int:
        return len(self.categories)


class Function(Domain):
    """``sample_from(fn)``: fn(config) (or fn()) computes the value from the resolved config."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func

    def is_function(self) -> bool:
        return True

    def sample(self, config: dict[str, Any] | None = None, rng: random.Random | None = None) -> Any:  # fmt: skip
        try:
            return self.func(_Spec(config or {}))
        except TypeError as exc:
            if "positional argument" not in str(exc):
                raise
            return self.func()


class _Spec(dict[str, Any]):
    """The resolved config handed to a sample_from function (``spec.config.x`` works)."""

    @property
    def config(self) -> _Spec:
        return self

    def __getattr__(self, name: str) -> Any:
        try:
            value = self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc
        return _Spec(value) if isinstance(value, dict) else value


def uniform(lower: float, upper: float) -> Float:
    return Float(lower, upper)


def quniform(lower: float, upper: float, q: float) -> Float:
    return Float(lower, upper, q=q)


def loguniform(lower: float, upper: float, base: float = 10) -> Float:
    return Float(lower, upper, log_base=base)


def qloguniform(lower: float, upper: float, q: float, base: float = 10) -> Float:
    return Float(lower, upper, log_base=base, q=q)


def choice(categories: Sequence[Any]) -> Categorical:
    return Categorical(categories)


def randint(lower: int, upper: int) -> Integer:
    return Integer(lower, upper)


def qrandint(lower: int, upper: int, q: int = 1) -> Integer:
    """An int in [lower, upper] (upper included, as Ray's qrandint) rounded to q."""
    return Integer(lower, upper + 1, q=q)


def lograndint(lower: int, upper: int, base: float = 10) -> Integer:
    return Integer(lower, upper, log_base=base)


def qlograndint(lower: int, upper: int, q: int, base: float = 10) -> Integer:
    return Integer(lower, upper + 1, log_base=base, q=q)


def randn(mean: float = 0.0, sd: float = 1.0) -> Normal:
    return Normal(mean, sd)


def qrandn(mean: float, sd: float, q: float) -> Normal:
    return Normal(mean, sd, q)


def sample_from(func: Callable[..., Any]) -> Function:
    return Function(func)


def grid_search(values: Sequence[Any]) -> dict[str, list[Any]]:
    """Try every value in ``values`` (each with num_samples trials)."""
    return {"grid_search": list(values)}
