"""Tests for one node's resource ledger (``ember.scheduler.ledger``): pure, no I/O."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from ember.scheduler.ledger import ResourceLedger, ResourcesUnavailable
from ember.scheduler.placement import request_in_bundle
from ember.scheduler.resources import SCALE, quantize

PG = b"\x01" * 18


def test_ledger_acquire_and_release_in_tenths_exactly() -> None:
    ledger = ResourceLedger({"CPU": 1.0})
    leases = [ledger.acquire({"CPU": 0.1}) for _ in range(10)]
    assert ledger.available() == {"CPU": 0.0}
    assert not ledger.fits({"CPU": 0.1})
    with pytest.raises(ResourcesUnavailable) as info:
        ledger.acquire({"CPU": 0.1})
    assert info.value.request == {"CPU": 0.1}
    assert "CPU: 0.1" in str(info.value)
    assert len({lease.lease_id for lease in leases}) == 10
    for lease in leases:
        assert ledger.release(lease.lease_id)
    assert ledger.available() == {"CPU": 1.0}
    assert not ledger.release(leases[0].lease_id)  # twice: nothing more comes back


def test_ledger_unavailable_error_pickles() -> None:
    err = ResourcesUnavailable({"GPU": 1.0}, {"GPU": 0.0})
    back = pickle.loads(pickle.dumps(err))
    assert (back.request, back.available) == ({"GPU": 1.0}, {"GPU": 0.0})


def test_ledger_keeps_keys_of_used_up_resources() -> None:
    ledger = ResourceLedger({"CPU": 2.0, "custom": 1.0})
    ledger.acquire({"custom": 1.0, "memory": 0.0})
    assert ledger.available() == {"CPU": 2.0, "custom": 0.0}
    assert ledger.totals() == {"CPU": 2.0, "custom": 1.0}


def test_ledger_whole_gpus_get_distinct_ids() -> None:
    ledger = ResourceLedger({"GPU": 3.0})
    a = ledger.acquire({"GPU": 2.0})
    b = ledger.acquire({"GPU": 1.0})
    assert (a.gpu_ids, b.gpu_ids) == ((0, 1), (2,))
    assert not ledger.fits({"GPU": 0.5})
    ledger.release(a.lease_id)
    assert ledger.acquire({"GPU": 1.0}).gpu_ids == (0,)


def test_ledger_fractional_gpus_share_an_id() -> None:
    ledger = ResourceLedger({"GPU": 1.0})
    a = ledger.acquire({"GPU": 0.5})
    b = ledger.acquire({"GPU": 0.5})
    assert a.gpu_ids == b.gpu_ids == (0,)  # as in Ray; the old ledger gave b no id
    assert not ledger.fits({"GPU": 0.1})


def test_ledger_fragmented_gpus_do_not_fit_a_fraction_larger_than_any_share() -> None:
    ledger = ResourceLedger({"GPU": 2.0})
    ledger.acquire({"GPU": 0.6})
    ledger.acquire({"GPU": 0.6})  # ids 0 and 1 have 0.4 left each
    assert ledger.available() == {"GPU": 0.8}
    assert not ledger.fits({"GPU": 0.5})
    assert not ledger.fits({"GPU": 1.0})
    assert ledger.acquire({"GPU": 0.4}).gpu_ids == (0,)


def test_ledger_a_fractional_gpu_total_is_one_smaller_id() -> None:
    ledger = ResourceLedger({"GPU": 1.5})
    assert ledger.acquire({"GPU": 1.0}).gpu_ids == (0,)
    assert not ledger.fits({"GPU": 1.0})
    assert ledger.acquire({"GPU": 0.5}).gpu_ids == (1,)


def test_ledger_lend_and_unlend_a_blocked_workers_cpu() -> None:
    ledger = ResourceLedger({"CPU": 1.0})
    lease = ledger.acquire({"CPU": 1.0})
    assert ledger.lend(lease.lease_id)
    assert not ledger.lend(lease.lease_id)  # once
    assert ledger.available() == {"CPU": 1.0}
    other = ledger.acquire({"CPU": 1.0})
    assert ledger.unlend(lease.lease_id)
    assert ledger.available() == {"CPU": -1.0}  # oversubscribed until one ends
    assert not ledger.unlend(lease.lease_id)
    ledger.release(other.lease_id)
    ledger.release(lease.lease_id)
    assert ledger.available() == {"CPU": 1.0}


def test_ledger_release_of_a_lent_lease_returns_only_what_it_still_holds() -> None:
    ledger = ResourceLedger({"CPU": 2.0})
    lease = ledger.acquire({"CPU": 1.0})
    ledger.lend(lease.lease_id)
    ledger.release(lease.lease_id)
    assert ledger.available() == {"CPU": 2.0}
    assert not ledger.unlend(lease.lease_id)  # a late unblock of an ended lease
    assert ledger.available() == {"CPU": 2.0}


def test_ledger_lends_nothing_for_a_lease_without_cpu() -> None:
    ledger = ResourceLedger({"CPU": 1.0, "GPU": 1.0})
    lease = ledger.acquire({"GPU": 1.0})
    assert not ledger.lend(lease.lease_id)
    assert not ledger.is_lent(lease.lease_id)


def test_ledger_bundles_prepare_commit_return() -> None:
    ledger = ResourceLedger({"CPU": 4.0})
    assert ledger.prepare(PG, [(0, {"CPU": 1.0}), (1, {"CPU": 2.0})])
    assert ledger.prepare(PG, [(0, {"CPU": 1.0})])  # again: already done
    assert ledger.available() == {"CPU": 1.0}
    assert not any("_group_" in k for k in ledger.totals())
    assert not ledger.fits(request_in_bundle(PG.hex(), 0, {"CPU": 1.0}))
    assert ledger.commit(PG)
    assert not ledger.commit(PG)
    hex_ = PG.hex()
    totals = ledger.totals()
    assert totals[f"CPU_group_0_{hex_}"] == 1.0
    assert totals[f"CPU_group_1_{hex_}"] == 2.0
    assert totals[f"CPU_group_{hex_}"] == 3.0
    lease = ledger.acquire(request_in_bundle(hex_, 1, {"CPU": 2.0}))
    assert ledger.available()[f"CPU_group_{hex_}"] == 1.0
    assert ledger.available()[f"CPU_group_1_{hex_}"] == 0.0
    assert ledger.return_bundles(PG) == [lease.lease_id]
    assert ledger.totals() == {"CPU": 4.0}
    assert ledger.available() == {"CPU": 4.0}
    assert ledger.held(lease.lease_id) == {}
    ledger.release(lease.lease_id)  # the bundle keys do not come back as ghosts
    assert ledger.available() == {"CPU": 4.0}
    assert ledger.return_bundles(PG) == []


def test_ledger_tasks_with_and_without_a_bundle_index_share_the_group() -> None:
    ledger = ResourceLedger({"CPU": 2.0})
    ledger.prepare(PG, [(0, {"CPU": 1.0}), (1, {"CPU": 1.0})])
    ledger.commit(PG)
    one = {"CPU": 1.0}
    ledger.acquire(request_in_bundle(PG.hex(), 0, one))
    ledger.acquire(request_in_bundle(PG.hex(), -1, one))
    # The group reserved 2 CPUs and both are in use: a third task must wait
    # (it used to run, drawing on the group-wide CPU the indexed task left alone).
    assert not ledger.fits(request_in_bundle(PG.hex(), -1, one))
    assert not ledger.fits(request_in_bundle(PG.hex(), 1, one))


def test_ledger_prepare_is_all_or_nothing() -> None:
    ledger = ResourceLedger({"CPU": 2.0})
    assert not ledger.prepare(PG, [(0, {"CPU": 1.0}), (1, {"CPU": 1.5})])
    assert ledger.available() == {"CPU": 2.0}
    assert ledger.groups() == []
    assert not ledger.commit(PG)


def test_ledger_return_of_a_prepared_group_gives_the_reservation_back() -> None:
    ledger = ResourceLedger({"CPU": 2.0})
    ledger.prepare(PG, [(0, {"CPU": 2.0})])
    assert ledger.return_bundles(PG) == []
    assert ledger.available() == {"CPU": 2.0}


def test_ledger_statistics_snapshot() -> None:
    ledger = ResourceLedger({"CPU": 4.0, "GPU": 2.0})
    a = ledger.acquire({"CPU": 1.0, "GPU": 0.5})
    ledger.lend(a.lease_id)
    ledger.prepare(PG, [(0, {"CPU": 2.0})])
    st_ = ledger.statistics()
    assert st_.totals == {"CPU": 4.0, "GPU": 2.0}
    assert st_.available == {"CPU": 2.0, "GPU": 1.5}
    assert st_.held == {"CPU": 0.0, "GPU": 0.5}
    assert st_.lent == {"CPU": 1.0}
    assert st_.reserved == {"CPU": 2.0}
    assert (st_.leases, st_.prepared_groups, st_.committed_groups) == (1, 1, 0)
    assert st_.free_gpu_ids == (1,)
    ledger.release(a.lease_id)
    assert st_.leases == 1  # a snapshot
    with pytest.raises(TypeError):
        st_.available["CPU"] = 9.0  # type: ignore[index]


# -- the state machine -----------------------------------------------------------------

tenths = st.integers(min_value=0, max_value=30).map(lambda n: n / 10)
gpu_asks = st.sampled_from([0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 2.0])


def _q(d: dict[str, float]) -> dict[str, int]:
    return {k: quantize(v) for k, v in d.items()}


class LedgerMachine(RuleBasedStateMachine):
    """Random leases, lending and bundles, as the node daemon uses them."""

    leases = Bundle("leases")
    groups = Bundle("groups")

    @initialize(
        cpu=st.integers(min_value=0, max_value=80).map(lambda n: n / 10),
        gpu=st.sampled_from([0.0, 0.5, 1.0, 2.0, 2.5, 4.0]),
        custom=st.sampled_from([0.0, 1.0, 3.3]),
    )
    def start(self, cpu: float, gpu: float, custom: float) -> None:
        self.initial = {"CPU": cpu, "GPU": gpu, "custom": custom}
        self.ledger = ResourceLedger(self.initial)
        #: lease id -> its GPU request (fixed point)
        self.gpu_asks: dict[int, int] = {}
        self.reclaimed: set[int] = set()  # leases that took lent CPU back
        self.next_pg = 0
        self.committed: set[bytes] = set()
        self.prepared: set[bytes] = set()

    def _try(self, request: dict[str, float]) -> int:
        avail = _q(self.ledger.available())
        short = any(avail.get(k, 0) < v for k, v in _q(request).items() if v > 0)
        fits = self.ledger.fits(request)
        if short:
            assert not fits
        if not fits:
            with pytest.raises(ResourcesUnavailable):
                self.ledger.acquire(request)
            return 0
        lease = self.ledger.acquire(request)
        need = quantize(request.get("GPU", 0.0))
        self.gpu_asks[lease.lease_id] = need
        whole, frac = divmod(need, SCALE)
        assert len(lease.gpu_ids) == whole + (1 if frac else 0)
        assert dict(lease.resources) == {k: v for k, v in request.items() if v > 0}
        return lease.lease_id

    @rule(target=leases, cpu=tenths, gpu=gpu_asks, custom=tenths)
    def acquire(self, cpu: float, gpu: float, custom: float) -> int:
        return self._try({"CPU": cpu, "GPU": gpu, "custom": custom})

    @rule(target=leases, data=st.data(), cpu=tenths)
    def acquire_in_bundle(self, data: st.DataObject, cpu: float) -> int:
        if not self.committed:
            return 0
        pg = data.draw(st.sampled_from(sorted(self.committed)))
        index = data.draw(st.integers(min_value=-1, max_value=2))
        return self._try(request_in_bundle(pg.hex(), index, {"CPU": cpu}))

    @rule(lease_id=consumes(leases))
    def release(self, lease_id: int) -> None:
        if lease_id == 0:
            return
        before = _q(self.ledger.available())
        held = _q(self.ledger.held(lease_id))
        lent = self.ledger.is_lent(lease_id)
        assert self.ledger.release(lease_id)
        after = _q(self.ledger.available())
        for k, v in held.items():
            back = v - (held.get("CPU", 0) if lent and k == "CPU" else 0)
            assert after[k] - before[k] == back
        self.gpu_asks.pop(lease_id)
        self.reclaimed.discard(lease_id)

    @rule(lease_id=leases)
    def lend(self, lease_id: int) -> None:
        if lease_id and self.ledger.holds(lease_id):
            was = self.ledger.is_lent(lease_id)
            cpu = self.ledger.held(lease_id).get("CPU", 0.0)
            assert self.ledger.lend(lease_id) == (not was and cpu > 0)

    @rule(lease_id=leases)
    def unlend(self, lease_id: int) -> None:
        if lease_id and self.ledger.holds(lease_id):
            was = self.ledger.is_lent(lease_id)
            assert self.ledger.unlend(lease_id) == was
            if was:
                self.reclaimed.add(lease_id)

    @rule(target=groups, bundles=st.lists(tenths, min_size=1, max_size=3))
    def prepare(self, bundles: list[float]) -> bytes:
        self.next_pg += 1
        pg = self.next_pg.to_bytes(18, "big")
        avail = _q(self.ledger.available())
        need = sum(quantize(b) for b in bundles)
        ok = self.ledger.prepare(pg, [(i, {"CPU": b}) for i, b in enumerate(bundles)])
        assert ok == (avail["CPU"] >= need)
        if ok:
            self.prepared.add(pg)
            assert _q(self.ledger.available())["CPU"] == avail["CPU"] - need
        return pg

    @rule(pg=groups)
    def commit(self, pg: bytes) -> None:
        ok = self.ledger.commit(pg)
        assert ok == (pg in self.prepared and pg not in self.committed)
        if ok:
            self.committed.add(pg)

    @rule(pg=consumes(groups))
    def return_bundles(self, pg: bytes) -> None:
        drawing = [
            lease_id
            for lease_id in self.gpu_asks
            if any(pg.hex() in k for k in self.ledger.held(lease_id))
        ]
        assert sorted(self.ledger.return_bundles(pg)) == sorted(drawing)
        self.prepared.discard(pg)
        self.committed.discard(pg)

    @invariant()
    def amounts_add_up(self) -> None:
        if not hasattr(self, "ledger"):
            return
        s = self.ledger.statistics()
        totals, avail = _q(dict(s.totals)), _q(dict(s.available))
        held, reserved, lent = _q(dict(s.held)), _q(dict(s.reserved)), _q(dict(s.lent))
        assert set(avail) == set(totals)
        for k, total in totals.items():
            assert avail[k] + held.get(k, 0) + reserved.get(k, 0) == total, k
            assert avail[k] <= total
        for amounts in (held, reserved, lent):
            assert all(v >= 0 for v in amounts.values())
            assert set(amounts) <= set(totals)
        for k, v in avail.items():
            if v < 0:
                assert k == "CPU"
                assert self.reclaimed
        for k in self.initial:
            assert totals[k] == quantize(self.initial[k])
        assert s.leases == len(self.gpu_asks)
        assert (s.prepared_groups, s.committed_groups) == (
            len(self.prepared),
            len(self.committed),
        )

    @invariant()
    def bundle_resources_exist_only_while_committed(self) -> None:
        if not hasattr(self, "ledger"):
            return
        keys = {k for k in self.ledger.totals() if "_group_" in k}
        owners = {k.rsplit("_", 1)[1] for k in keys}
        assert owners == {pg.hex() for pg in self.committed}
        for pg in self.committed:
            assert f"bundle_group_{pg.hex()}" in keys

    @invariant()
    def gpu_ids_are_never_handed_out_twice(self) -> None:
        if not hasattr(self, "ledger"):
            return
        free = self.ledger.gpu_shares()
        used = [0] * len(free)
        whole_owner: dict[int, int] = {}
        for lease_id, h in self.ledger._leases.items():
            assert sum(h.gpus.values()) == self.gpu_asks[lease_id]
            for i, share in h.gpus.items():
                used[i] += share
                if share == SCALE:
                    assert i not in whole_owner
                    whole_owner[i] = lease_id
        gpu = quantize(self.initial["GPU"])
        capacity = [min(SCALE, gpu - i * SCALE) for i in range(len(free))]
        assert sum(capacity) == gpu
        for i in range(len(free)):
            assert free[i] >= 0
            assert free[i] + used[i] == capacity[i]
            if i in whole_owner:
                assert used[i] == SCALE  # nobody else has a share of it
        s = self.ledger.statistics()
        assert quantize(s.available.get("GPU", 0.0)) <= sum(free)

    def teardown(self) -> None:
        if not hasattr(self, "ledger"):
            return
        for lease_id in list(self.gpu_asks):
            self.ledger.release(lease_id)
        for pg in self.ledger.groups():
            self.ledger.return_bundles(pg)
        assert self.ledger.totals() == self.ledger.available() == self.initial
        assert self.ledger.gpu_shares() == self.ledger._gpu_capacity


LedgerMachine.TestCase.settings = settings(
    max_examples=80, stateful_step_count=40, deadline=None
)
test_ledger_state_machine = LedgerMachine.TestCase
