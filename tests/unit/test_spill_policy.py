"""The spill policy and index (``object_store/spill_policy.py``, ``spill_index.py``): pure."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ember.object_store.spill_index import SpillIndex
from ember.object_store.spill_policy import (
    Candidate,
    SpillPolicy,
    batch_layout,
)
from ember.object_store.store import PAGE, ObjectStore

MB = 1024 * 1024


def oid(n: int) -> bytes:
    return n.to_bytes(20, "big")


def cand(n: int, alloc: int = MB, use: int = 0, **kw: bool) -> Candidate:
    return Candidate(oid(n), alloc, use or n, **kw)


def test_high_water_is_the_threshold_of_capacity():
    p = SpillPolicy(100 * MB, threshold=0.8)
    assert p.high_water == 80 * MB
    assert not p.over_high_water(80 * MB)
    assert p.over_high_water(80 * MB + 1)
    assert p.need_for_high_water(90 * MB) == 10 * MB
    assert p.need_for_high_water(10 * MB) == 0


def test_a_create_needs_what_it_overflows_or_its_size_when_fragmented():
    p = SpillPolicy(100 * MB)
    assert p.need_for_create(used=95 * MB, alloc=10 * MB) == 5 * MB
    # 50 MB free in all, but (the store said) not in one piece: free its size
    assert p.need_for_create(used=50 * MB, alloc=10 * MB) == 10 * MB


def test_nothing_needed_plans_nothing():
    plan = SpillPolicy(100 * MB).plan([cand(1)], 0)
    assert plan.empty
    assert plan.freed_bytes == 0


def test_secondary_copies_go_first_then_disk_copies_then_primaries_oldest_first():
    p = SpillPolicy(100 * MB, batch_bytes=MB, batch_max_objects=1)
    cands = [
        cand(1, use=1),  # the oldest primary
        cand(2, use=9, secondary=True),
        cand(3, use=2, on_disk=True),
        cand(4, use=3, secondary=True),
        cand(5, use=5),
    ]
    plan = p.plan(cands, 2 * MB)
    assert plan.drop == (oid(4), oid(2))  # secondaries, least recently used first
    assert plan.release == ()
    assert plan.batches == ()
    plan = p.plan(cands, 3 * MB)
    assert plan.release == (oid(3),)
    assert plan.batches == ()
    plan = p.plan(cands, 5 * MB)
    assert plan.batches == ((oid(1),), (oid(5),))
    assert plan.freed_bytes == 5 * MB


def test_small_objects_share_a_file_and_the_last_batch_is_filled_past_the_need():
    p = SpillPolicy(100 * MB, batch_bytes=4 * MB, batch_max_objects=100)
    small = [cand(i, alloc=PAGE) for i in range(1, 2001)]
    plan = p.plan(small, PAGE)  # one page needed, yet a whole batch is written
    assert len(plan.batches) == 1
    assert len(plan.batches[0]) == 100  # capped by the object count
    p = SpillPolicy(100 * MB, batch_bytes=16 * PAGE, batch_max_objects=1000)
    plan = p.plan(small, 40 * PAGE)
    assert [len(b) for b in plan.batches] == [16, 16, 16]
    assert plan.freed_bytes == 48 * PAGE


def test_a_big_object_is_a_batch_of_its_own():
    p = SpillPolicy(1000 * MB, batch_bytes=16 * MB)
    plan = p.plan([cand(1, alloc=100 * MB), cand(2, alloc=100 * MB)], 150 * MB)
    assert plan.batches == ((oid(1),), (oid(2),))


def test_too_few_candidates_free_what_they_can():
    plan = SpillPolicy(100 * MB).plan([cand(1), cand(2)], 50 * MB)
    assert plan.freed_bytes == 2 * MB
    assert plan.batches == ((oid(1), oid(2)),)


@given(
    st.lists(
        st.tuples(st.integers(1, 64), st.booleans(), st.booleans()),
        max_size=60,
    ),
    st.integers(0, 4000),
)
def test_plans_take_each_candidate_once_and_free_enough(specs, need_pages):
    cands = [
        Candidate(oid(i), n * PAGE, i, secondary=sec, on_disk=disk and not sec)
        for i, (n, sec, disk) in enumerate(specs)
    ]
    p = SpillPolicy(10_000 * PAGE, batch_bytes=32 * PAGE, batch_max_objects=8)
    plan = p.plan(cands, need_pages * PAGE)
    taken = [*plan.drop, *plan.release, *(o for b in plan.batches for o in b)]
    assert len(taken) == len(set(taken))
    by_id = {c.oid: c for c in cands}
    assert plan.freed_bytes == sum(by_id[o].alloc for o in taken)
    total = sum(c.alloc for c in cands)
    assert plan.freed_bytes >= min(need_pages * PAGE, total)
    assert all(by_id[o].secondary for o in plan.drop)
    assert all(by_id[o].on_disk for o in plan.release)
    assert all(len(b) <= 8 for b in plan.batches)


def test_bad_thresholds_are_refused():
    with pytest.raises(ValueError, match="object_spilling_threshold"):
        SpillPolicy(MB, threshold=0)
    with pytest.raises(ValueError, match="object_spilling_threshold"):
        SpillPolicy(MB, threshold=1.5)


def test_batch_layout_puts_each_object_on_a_page():
    offsets, end = batch_layout([1, PAGE, PAGE + 1, 10])
    assert offsets == [0, PAGE, 2 * PAGE, 4 * PAGE]
    assert end == 5 * PAGE


def test_a_spill_file_is_deleted_when_its_last_object_is_freed():
    ix = SpillIndex()
    ix.add_file("/s/a", [(oid(1), 0, 10), (oid(2), PAGE, 20)])
    ix.add_file("/s/b", [(oid(3), 0, 30)])
    assert oid(2) in ix
    assert ix.location(oid(2)).offset == PAGE
    assert ix.statistics().bytes == 60
    assert ix.statistics().files == 2
    assert ix.forget(oid(1)) is None  # oid 2 still lives in /s/a
    assert ix.forget(oid(9)) is None  # never spilled
    assert ix.forget(oid(2)) == "/s/a"
    assert ix.paths() == ["/s/b"]
    assert ix.forget(oid(3)) == "/s/b"
    assert ix.statistics().objects == 0
    assert ix.statistics().bytes == 0


def test_the_index_refuses_an_empty_file_and_a_second_location():
    ix = SpillIndex()
    with pytest.raises(ValueError):
        ix.add_file("/s/a", [])
    ix.add_file("/s/a", [(oid(1), 0, 10)])
    with pytest.raises(KeyError):
        ix.add_file("/s/b", [(oid(1), 0, 10)])


def test_the_store_tracks_use_order_and_what_fits():
    s = ObjectStore(4 * PAGE)
    s.create(oid(1), PAGE)
    s.create(oid(2), PAGE, secondary=True)
    s.seal(oid(1))
    s.seal(oid(2))
    assert s.entries[oid(2)].secondary
    assert s.entries[oid(1)].last_use < s.entries[oid(2)].last_use
    s.pin(oid(1))
    assert s.entries[oid(1)].last_use > s.entries[oid(2)].last_use
    assert s.fits(2 * PAGE)
    assert not s.fits(3 * PAGE)
    s.create(oid(3), PAGE)
    s.hold(oid(3))  # unsealed, yet held: a delete waits for the unpin
    s.delete(oid(3))
    assert oid(3) in s.entries
    s.unpin(oid(3))
    assert oid(3) not in s.entries


def test_fresh_copies_and_restores_go_only_when_nothing_else_is_left():
    p = SpillPolicy(100 * MB, batch_bytes=MB, batch_max_objects=1)
    cands = [
        cand(1, use=9, secondary=True, fresh=True),  # pulled, its reader not here yet
        cand(2, use=8, on_disk=True, fresh=True),  # just restored
        cand(3, use=5),
        cand(4, use=1, secondary=True),
    ]
    plan = p.plan(cands, 2 * MB)
    assert plan.drop == (oid(4),)
    assert plan.batches == ((oid(3),),)
    plan = p.plan(cands, 4 * MB)
    assert plan.release == (oid(2),)
    assert plan.drop == (oid(4), oid(1))
    plan = p.plan(cands, 4 * MB, take_fresh=False)  # the high-water spill
    assert plan.drop == (oid(4),)
    assert plan.release == ()
    assert plan.freed_bytes == 2 * MB
