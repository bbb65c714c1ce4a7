"""Back-pressure for the streaming executor: which stage may start work now (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StageLoad:
    """What one stage holds: queued input bytes, tasks in flight, buffered output bytes."""

    cap: int
    in_flight: int = 0
    queued: int = 0
    held_bytes: int = 0
    #: the largest output block seen so far (the estimate for a task not yet finished)
    est_block_bytes: int = 0


@dataclass
class Budget:
    """The memory budget of one execution.

    ``limit_bytes`` is the object-store memory the pipeline may hold at once (blocks
    queued between stages, plus an estimate for every task in flight). Only the first
    stage (the one that brings new data in) is held back by it: a later stage turns
    blocks already counted into new ones, so letting it run frees memory rather than
    adding to it. Every stage is capped at ``cap`` tasks in flight. When nothing is in
    flight and nothing is held, the first stage may always start one task, so a block
    bigger than the budget still streams (one at a time).
    """

    limit_bytes: int
    stages: list[StageLoad] = field(default_factory=list)

    def held(self) -> int:
        total = 0
        est = self.block_estimate()
        for s in self.stages:
            total += s.held_bytes + s.in_flight * max(est, s.est_block_bytes)
        return total

    def block_estimate(self) -> int:
        return max((s.est_block_bytes for s in self.stages), default=0)

    def can_launch(self, k: int) -> bool:
        stage = self.stages[k]
        if stage.queued <= 0 or stage.in_flight >= stage.cap:
            return False
        if k > 0:
            return True
        held = self.held()
        if held == 0 and all(s.in_flight == 0 for s in self.stages):
            return True
        return held + self.block_estimate() <= self.limit_bytes

    def over_budget(self) -> bool:
        return self.held() > self.limit_bytes
