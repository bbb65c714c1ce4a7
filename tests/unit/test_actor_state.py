"""Per-actor caller state: two threads making the first call share one state."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ember.runtime import actor_submitter
from ember.runtime.actor_submitter import ActorState


def _submitter() -> Any:
    return actor_submitter.ActorSubmitter.__new__(actor_submitter.ActorSubmitter)


def test_first_calls_from_two_threads_share_one_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sub = _submitter()
    sub.actors = {}
    barrier = threading.Barrier(2, timeout=10)

    class RacingState(ActorState):
        # Both threads reach the construction (both missed the lookup) before
        # either can insert: the interleaving of the race, forced.
        def __init__(self, actor_id: bytes, class_name: str) -> None:
            barrier.wait()
            super().__init__(actor_id, class_name)

    monkeypatch.setattr(actor_submitter, "ActorState", RacingState)
    got: list[ActorState] = []

    def first_call() -> None:
        got.append(sub.state(b"a" * 16, "A"))

    threads = [threading.Thread(target=first_call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(got) == 2
    assert got[0] is got[1]
    assert sub.actors[b"a" * 16] is got[0]
