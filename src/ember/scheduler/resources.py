"""Resource arithmetic in fixed point (0.0001 granularity), as plain dicts."""

from __future__ import annotations

SCALE = 10_000


def quantize(x: float) -> int:
    """``x`` in units of 1/SCALE, the ledger's exact representation."""
    return round(x * SCALE)


def quantized(request: dict[str, float]) -> dict[str, int]:
    """The positive amounts of ``request`` in fixed point (nothing else asks anything)."""
    out: dict[str, int] = {}
    for k, v in request.items():
        if v > 0:
            q = quantize(v)
            if q > 0:
                out[k] = q
    return out


_q = quantize


def fits(request: dict[str, float], available: dict[str, float]) -> bool:
    """Whether ``available`` covers every positive amount in ``request``."""
    return all(_q(available.get(k, 0.0)) >= _q(v) for k, v in request.items() if v > 0)


def subtract(available: dict[str, float], request: dict[str, float]) -> None:
    for k, v in request.items():
        if v > 0:
            available[k] = (_q(available.get(k, 0.0)) - _q(v)) / SCALE


def add(available: dict[str, float], request: dict[str, float]) -> None:
    for k, v in request.items():
        if v > 0:
            available[k] = (_q(available.get(k, 0.0)) + _q(v)) / SCALE


def describe(request: dict[str, float]) -> str:
    """``{CPU: 1, GPU: 2}`` as a short readable string."""
    return (
        ", ".join(f"{k}: {v:g}" for k, v in sorted(request.items()) if v > 0)
        or "nothing"
    )
