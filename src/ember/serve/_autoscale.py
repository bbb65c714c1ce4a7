"""The autoscaling decision, pure: from samples of the ongoing requests to a replica target.

The controller feeds :meth:`ScaleDecider.record` with (time, total requests queued and
running for the deployment) and asks :meth:`ScaleDecider.decide` for the target; time
is passed in, so the unit tests drive it without sleeping.
"""

from __future__ import annotations

import math
from collections import deque

from ember.serve.config import AutoscalingConfig

__all__ = ["ScaleDecider", "desired_replicas"]


def desired_replicas(cfg: AutoscalingConfig, current: int, total_ongoing: float) -> int:
    """Ray's policy: move toward total/target, damped by the smoothing factors."""
    if current == 0:
        want = 1 if total_ongoing > 0 else 0
        return max(cfg.min_replicas, min(cfg.max_replicas, want))
    ratio = total_ongoing / (cfg.target_ongoing_requests * current)
    factor = cfg.up_factor() if ratio > 1 else cfg.down_factor()
    want = math.ceil(current * (1 + (ratio - 1) * factor) - 1e-9)
    if ratio < 1 and total_ongoing > 0:
        want = max(want, 1)
    return max(cfg.min_replicas, min(cfg.max_replicas, want))


class ScaleDecider:
    """Averages the samples over ``look_back_period_s`` and applies the up/down delays."""

    def __init__(self, cfg: AutoscalingConfig) -> None:
        self.cfg = cfg
        self.samples: deque[tuple[float, float]] = deque()
        self._up_since: float | None = None
        self._down_since: float | None = None

    def record(self, now: float, total_ongoing: float) -> None:
        self.samples.append((now, total_ongoing))
        horizon = now - max(self.cfg.look_back_period_s, 0.0)
        while len(self.samples) > 1 and self.samples[0][0] < horizon:
            self.samples.popleft()

    def average(self) -> float:
        if not self.samples:
            return 0.0
        return sum(v for _, v in self.samples) / len(self.samples)

    def decide(self, now: float, current: int) -> int:
        """The replica target now: ``current`` unless a change has persisted long enough."""
        want = desired_replicas(self.cfg, current, self.average())
        if want > current:
            self._down_since = None
            if self._up_since is None:
                self._up_since = now
            if now - self._up_since >= self.cfg.upscale_delay_s:
                self._up_since = None
                return want
        elif want < current:
            self._up_since = None
            if self._down_since is None:
                self._down_since = now
            if now - self._down_since >= self.cfg.downscale_delay_s:
                self._down_since = None
                return want
        else:
            self._up_since = self._down_since = None
        return current
