"""The pure lineage bookkeeping: records kept while referenced, recursion, the byte cap."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ember.runtime.lineage import RECORD_OVERHEAD_BYTES, Lineage, record_size


def _tid(i: int) -> bytes:
    return i.to_bytes(16, "big")


def _oid(i: int, index: int = 1) -> bytes:
    return _tid(i) + index.to_bytes(4, "big")


def _spec(nbytes: int = 0) -> SimpleNamespace:
    return SimpleNamespace(args=b"x" * nbytes, name="f")


def _record(lin: Lineage, i: int, args=(), retries=3, nbytes=0, live=True):
    out = _oid(i)
    return lin.record(
        _tid(i),
        _spec(nbytes),
        [],
        [out],
        [out] if live else [],
        list(args),
        [None] * len(args),
        retries,
    )


def test_a_record_lives_while_its_return_is_referenced() -> None:
    lin = Lineage(1 << 30)
    rec = _record(lin, 1)
    assert rec is not None
    assert lin.producer(_oid(1)) is rec
    lin.released(_oid(1))
    assert lin.producer(_oid(1)) is None
    assert len(lin) == 0
    assert lin.total_bytes == 0


def test_nothing_is_kept_for_a_task_whose_returns_are_gone() -> None:
    lin = Lineage(1 << 30)
    assert _record(lin, 1, live=False) is None
    assert len(lin) == 0


def test_an_argument_producer_is_kept_while_a_dependent_record_is() -> None:
    lin = Lineage(1 << 30)
    _record(lin, 1)
    _record(lin, 2, args=[_oid(1)])
    lin.released(_oid(1))  # the user dropped the argument: its lineage stays
    assert lin.producer(_oid(1)) is not None
    lin.released(_oid(2))  # the dependent goes: both go
    assert lin.producer(_oid(1)) is None
    assert lin.producer(_oid(2)) is None
    assert lin.total_bytes == 0


def test_a_long_chain_is_released_without_recursion() -> None:
    lin = Lineage(1 << 40)
    n = 5000
    _record(lin, 0)
    for i in range(1, n):
        _record(lin, i, args=[_oid(i - 1)])
        lin.released(_oid(i - 1))
    assert len(lin) == n
    lin.released(_oid(n - 1))
    assert len(lin) == 0
    assert lin.total_bytes == 0


def test_each_reexecution_takes_a_retry() -> None:
    lin = Lineage(1 << 30)
    rec = _record(lin, 1, retries=2)
    assert rec is not None
    assert lin.take_attempt(rec)
    assert lin.take_attempt(rec)
    assert not lin.take_attempt(rec)
    forever = _record(lin, 2, retries=-1)
    assert forever is not None
    assert all(lin.take_attempt(forever) for _ in range(100))


def test_a_task_without_retries_keeps_only_its_verdict() -> None:
    lin = Lineage(1 << 30)
    rec = _record(lin, 1, retries=0, nbytes=10_000)
    assert rec is not None
    assert rec.spec is None
    assert rec.size == RECORD_OVERHEAD_BYTES
    assert not lin.take_attempt(rec)


def test_recording_again_updates_the_retries_only() -> None:
    lin = Lineage(1 << 30)
    rec = _record(lin, 1, retries=3, nbytes=1000)
    assert rec is not None
    again = _record(lin, 1, retries=0, nbytes=1000)
    assert again is rec
    assert rec.retries_left == 0
    assert lin.total_bytes == RECORD_OVERHEAD_BYTES  # stripped


def test_the_oldest_lineage_is_evicted_past_the_byte_cap() -> None:
    size = record_size(_spec(1000), [])
    lin = Lineage(max_bytes=3 * size)
    for i in range(5):
        _record(lin, i, nbytes=1000)
    assert lin.total_bytes <= 3 * size
    assert lin.producer(_oid(0)) is None
    assert lin.producer(_oid(1)) is None
    assert lin.was_evicted(_oid(0))
    assert lin.was_evicted(_oid(1))
    assert lin.producer(_oid(4)) is not None
    assert not lin.was_evicted(_oid(4))
    assert lin.evictions == 2
    lin.released(_oid(0))  # the evicted marker goes with the last reference
    assert not lin.was_evicted(_oid(0))


def test_the_evicted_markers_are_bounded() -> None:
    lin = Lineage(max_bytes=0, max_evicted=10)
    for i in range(100):
        _record(lin, i)
    assert len(lin) == 0
    assert sum(lin.was_evicted(_oid(i)) for i in range(100)) == 10


def test_record_size_counts_the_frames() -> None:
    assert record_size(_spec(10), [b"abc", bytearray(5)]) == RECORD_OVERHEAD_BYTES + 18


class LineageMachine(RuleBasedStateMachine):
    """Random records, dependencies and releases against a simple model."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = Lineage(max_bytes=1 << 40)
        self.next = 0
        #: task -> (its args, whether its return is still referenced)
        self.model: dict[int, tuple[list[int], bool]] = {}

    def _kept(self) -> set[int]:
        """The model: a task is kept while referenced or a kept task depends on it."""
        kept = {t for t, (_, live) in self.model.items() if live}
        stack = list(kept)
        while stack:
            for a in self.model[stack.pop()][0]:
                if a not in kept:
                    kept.add(a)
                    stack.append(a)
        return kept

    @rule(data=st.data())
    def submit(self, data: st.DataObject) -> None:
        kept = sorted(self._kept())
        args = data.draw(st.lists(st.sampled_from(kept), max_size=3)) if kept else []
        t = self.next
        self.next += 1
        _record(self.lin, t, args=[_oid(a) for a in args])
        self.model[t] = (args, True)

    @precondition(lambda self: any(live for _, live in self.model.values()))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        live = sorted(t for t, (_, lv) in self.model.items() if lv)
        t = data.draw(st.sampled_from(live))
        self.lin.released(_oid(t))
        args, _ = self.model[t]
        self.model[t] = (args, False)
        kept = self._kept()
        for task in [x for x in self.model if x not in kept]:
            del self.model[task]

    @invariant()
    def kept_records_match_the_model(self) -> None:
        kept = self._kept()
        assert {t for t in range(self.next) if self.lin.producer(_oid(t))} == kept
        assert len(self.lin) == len(kept)
        assert self.lin.total_bytes == len(kept) * record_size(_spec(), [])


TestLineageMachine = LineageMachine.TestCase


def test_pinned_objects_are_given_back_when_the_record_goes() -> None:
    unpinned: list[bytes] = []
    lin = Lineage(1 << 30, on_unpin=unpinned.extend)
    blob = _oid(9, index=0)
    out = _oid(1)
    lin.record(_tid(1), _spec(), [], [out], [out], [blob], [None], 3, [blob], 5000)
    assert lin.total_bytes == record_size(_spec(), []) + 5000
    lin.released(out)
    assert unpinned == [blob]
    assert lin.total_bytes == 0


def test_pinned_objects_go_as_soon_as_no_retry_is_left() -> None:
    unpinned: list[bytes] = []
    lin = Lineage(1 << 30, on_unpin=unpinned.extend)
    blob = _oid(9, index=0)
    out = _oid(1)
    lin.record(_tid(1), _spec(), [], [out], [out], [blob], [None], 0, [blob], 5000)
    assert unpinned == [blob]
    assert lin.total_bytes == RECORD_OVERHEAD_BYTES
