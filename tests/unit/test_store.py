"""Tests for the object store core (``ember.object_store.store``): pure, no I/O."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
)

from ember.object_store.store import PAGE, ObjectStore, StoreFullError


def oid(n: int) -> bytes:
    return n.to_bytes(20, "big")


def check_invariants(store: ObjectStore) -> None:
    """The allocator's bookkeeping agrees with itself."""
    free = store._free
    assert store.used == sum(e.alloc for e in store.entries.values())
    assert store.used + sum(n for _, n in free) == store.capacity
    assert free == sorted(free)
    for (off, n), (next_off, _) in itertools.pairwise(free):
        assert off + n < next_off  # non-overlapping, and coalesced (no gap of 0)
    for off, n in free:
        assert n > 0
        assert (off % PAGE, n % PAGE) == (0, 0)
    extents = sorted([(e.offset, e.alloc) for e in store.entries.values()] + free)
    end = 0
    for off, n in extents:
        assert off == end  # entries and free extents tile the arena exactly
        end = off + n
    assert end == store.capacity
    for e in store.entries.values():
        assert e.alloc >= max(e.size, 1)
        assert e.alloc % PAGE == 0


def test_store_capacity_rounds_down_to_pages() -> None:
    store = ObjectStore(10 * PAGE + 123)
    assert store.capacity == 10 * PAGE
    assert store.statistics().free_extents == 1


def test_store_create_seal_pin_unpin_delete() -> None:
    store = ObjectStore(8 * PAGE)
    off = store.create(oid(1), 100)
    assert off == 0
    assert store.used == PAGE
    assert not store.contains(oid(1))
    assert store.pin(oid(1)) is None  # not sealed yet: readers cannot see it
    store.seal(oid(1))
    assert store.contains(oid(1))
    e = store.pin(oid(1))
    assert e is not None
    assert (e.offset, e.size, e.pins) == (0, 100, 1)
    assert store.statistics().pinned == 1
    store.unpin(oid(1))
    assert e.pins == 0
    store.delete(oid(1))
    assert not store.contains(oid(1))
    assert store.pin(oid(1)) is None
    assert store.used == 0
    assert store.entries == {}
    check_invariants(store)


def test_store_create_rejects_a_duplicate_id() -> None:
    store = ObjectStore(4 * PAGE)
    store.create(oid(1), 10)
    with pytest.raises(KeyError):
        store.create(oid(1), 10)


def test_store_zero_byte_object_takes_one_page() -> None:
    store = ObjectStore(4 * PAGE)
    assert store.create(oid(1), 0) == 0
    assert store.create(oid(2), PAGE + 1) == PAGE
    assert store.create(oid(3), 1) == 3 * PAGE
    assert store.used == 4 * PAGE


def test_store_reuses_freed_memory() -> None:
    store = ObjectStore(16 * PAGE)
    store.create(oid(1), 3 * PAGE)
    freed = store.create(oid(2), 3 * PAGE)
    store.create(oid(3), 3 * PAGE)
    store.delete(oid(2))
    assert store.create(oid(4), 3 * PAGE) == freed
    check_invariants(store)


def test_store_pinned_deleted_object_is_not_reused_until_unpinned() -> None:
    store = ObjectStore(4 * PAGE)
    first = store.create(oid(1), PAGE)
    store.seal(oid(1))
    assert store.pin(oid(1)) is not None
    store.delete(oid(1))
    assert not store.contains(oid(1))
    assert store.pin(oid(1)) is None  # no new readers of a deleted object
    assert store.used == PAGE  # still held for the reader
    assert store.create(oid(2), PAGE) != first
    store.unpin(oid(1))
    assert oid(1) not in store.entries
    assert store.create(oid(3), PAGE) == first
    check_invariants(store)


def test_store_delete_twice_and_unknown_ids_are_harmless() -> None:
    store = ObjectStore(4 * PAGE)
    store.create(oid(1), PAGE)
    store.delete(oid(1))
    store.delete(oid(1))
    store.delete(oid(2))
    store.unpin(oid(2))
    assert store.used == 0
    check_invariants(store)


def test_store_coalesces_free_extents() -> None:
    n = 16
    store = ObjectStore(n * PAGE)
    for i in range(n):
        assert store.create(oid(i), PAGE) == i * PAGE
    assert store.statistics().free_extents == 0
    with pytest.raises(StoreFullError):
        store.create(oid(100), PAGE)
    for i in range(0, n, 2):
        store.delete(oid(i))
    assert store.statistics().free_extents == n // 2
    with pytest.raises(StoreFullError):
        store.create(oid(100), 2 * PAGE)  # fragmented: no two adjacent pages
    for i in range(1, n, 2):
        store.delete(oid(i))
        check_invariants(store)
    assert store.statistics().free_extents == 1
    assert store.create(oid(100), n * PAGE) == 0
    check_invariants(store)


def test_store_full_error_carries_sizes() -> None:
    store = ObjectStore(2 * PAGE)
    store.create(oid(1), PAGE)
    with pytest.raises(StoreFullError) as info:
        store.create(oid(2), 2 * PAGE)
    err = info.value
    assert (err.size, err.used, err.capacity) == (2 * PAGE, PAGE, 2 * PAGE)
    assert err.args == (2 * PAGE, PAGE, 2 * PAGE)
    assert oid(2) not in store.entries
    check_invariants(store)


def test_store_statistics_snapshot() -> None:
    store = ObjectStore(8 * PAGE)
    store.create(oid(1), 10)
    store.seal(oid(1))
    store.pin(oid(1))
    store.create(oid(2), PAGE + 1)
    stats = store.statistics()
    assert stats.capacity == 8 * PAGE
    assert stats.used == 3 * PAGE
    assert stats.objects == 2
    assert stats.pinned == 1
    assert stats.free_extents == 1


@dataclasses.dataclass
class Expected:
    """What the store should say about one object."""

    sealed: bool = False
    pins: int = 0
    deleted: bool = False


class StoreMachine(RuleBasedStateMachine):
    """Random create/seal/pin/unpin/delete, used as the daemon uses them."""

    live = Bundle("live")

    def __init__(self) -> None:
        super().__init__()
        self.store = ObjectStore(64 * PAGE)
        self.next_id = 0
        self.model: dict[bytes, Expected] = {}

    @rule(target=live, size=st.integers(min_value=0, max_value=20 * PAGE))
    def create(self, size: int) -> bytes:
        self.next_id += 1
        key = oid(self.next_id)
        alloc = max(1, -(-size // PAGE)) * PAGE
        before = list(self.store._free)
        candidates = [o for o, n in before if n >= alloc]
        if not candidates:
            with pytest.raises(StoreFullError) as info:
                self.store.create(key, size)
            assert (info.value.size, info.value.used) == (size, self.store.used)
            return key
        off = self.store.create(key, size)
        assert off == candidates[0]  # lowest address first
        self.model[key] = Expected()
        return key

    @rule(key=live)
    def seal(self, key: bytes) -> None:
        m = self.model.get(key)
        if m is not None and not m.deleted:
            self.store.seal(key)
            m.sealed = True

    @rule(key=live)
    def pin(self, key: bytes) -> None:
        m = self.model.get(key)
        got = self.store.pin(key)
        if m is None or not m.sealed or m.deleted:
            assert got is None
        else:
            assert got is not None
            m.pins += 1

    @rule(key=live)
    def unpin(self, key: bytes) -> None:
        m = self.model.get(key)
        if m is None or m.pins <= 0:
            return  # the daemon only unpins what a connection pinned
        self.store.unpin(key)
        m.pins -= 1
        if m.deleted and m.pins == 0:
            del self.model[key]

    @rule(key=consumes(live))
    def delete(self, key: bytes) -> None:
        self.store.delete(key)
        m = self.model.get(key)
        if m is None:
            return
        m.deleted = True
        if m.pins == 0:
            del self.model[key]

    @invariant()
    def bookkeeping_is_consistent(self) -> None:
        check_invariants(self.store)
        assert set(self.store.entries) == set(self.model)
        for key, m in self.model.items():
            e = self.store.entries[key]
            assert (e.sealed, e.pins, e.deleted) == (m.sealed, m.pins, m.deleted)
            assert self.store.contains(key) == (m.sealed and not m.deleted)


StoreMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None
)
test_store_state_machine = StoreMachine.TestCase
