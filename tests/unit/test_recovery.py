"""What an owner does about a lost object: relocate, re-run (arguments first), or name why not."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from ember import exceptions as exc
from ember.common.clock import FakeClock
from ember.runtime.lineage import Lineage
from ember.runtime.memory_store import MemoryStore
from ember.runtime.ownership import RefCounter
from ember.runtime.recovery import Recovery

ME = b"w" * 16
DEAD, ALIVE, OTHER = b"D" * 16, b"A" * 16, b"O" * 16


def _tid(i: int) -> bytes:
    return i.to_bytes(16, "big")


def _oid(i: int, index: int = 1) -> bytes:
    return _tid(i) + index.to_bytes(4, "big")


class Owner:
    """A Recovery over a real store, counter and lineage; resubmits are recorded."""

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        self.refs = RefCounter(ME, lambda oid, e: None, lambda oid, owner: None)
        self.store = MemoryStore(FakeClock(0.0), self.refs.has)
        self.errors: dict[bytes, BaseException] = {}
        self.links = SimpleNamespace(dead_nodes={DEAD}, address=None)
        lineage = Lineage(max_bytes, on_unpin=self.refs.remove_submitted)
        self.rec = Recovery(self.store, lineage, self.refs, self.links, self._set_error)
        self.resubmitted: list[bytes] = []
        self.rec.resubmit = lambda r: self.resubmitted.append(r.task_id)

    def _set_error(self, oid: bytes, err: BaseException) -> None:
        self.errors[oid] = err
        self.store.set_inline(oid, b"error", [], is_error=True)

    def finished(
        self,
        i: int,
        node: bytes,
        args: list[bytes] = (),
        retries: int = 3,
        blob: bytes | None = None,
    ) -> bytes:
        """Task ``i`` ran and stored its return at ``node``; the user holds the ref."""
        oid = _oid(i)
        self.refs.add_local(oid, None)
        self.store.add_pending(oid)
        args_ref = None if blob is None else SimpleNamespace(oid=blob)
        spec = SimpleNamespace(args=b"", name=f"task{i}", attempt=0, args_ref=args_ref)
        self.rec.record(_tid(i), spec, [], [oid], list(args), retries, stored=True)
        self.store.set_stored(oid, node, 1000)
        return oid

    def drop(self, oid: bytes) -> None:
        """The last ref went: the owner frees the value (Objects.release)."""
        self.refs.remove_local(oid)
        self.store.pop(oid)
        self.rec.released(oid)

    def put(self, node: bytes) -> bytes:
        oid = _oid(99, index=0)
        self.refs.add_local(oid, None)
        self.store.add_pending(oid)
        self.store.set_stored(oid, node, 1000)
        return oid


def test_a_lost_task_return_turns_pending_and_its_task_runs_again() -> None:
    o = Owner()
    oid = o.finished(1, DEAD)
    o.rec.lost(oid, DEAD)
    assert o.resubmitted == [_tid(1)]
    assert not o.store.entries[oid].ready
    assert o.rec.lineage.producer(oid).retries_left == 2


def test_a_live_copy_elsewhere_is_used_instead_of_running_again() -> None:
    o = Owner()
    oid = o.finished(1, DEAD)
    o.store.entries[oid].copies = [DEAD, ALIVE]
    o.rec.lost(oid, DEAD)
    assert o.resubmitted == []
    assert o.store.entries[oid].node_id == ALIVE


def test_a_stale_report_changes_nothing() -> None:
    o = Owner()
    oid = o.finished(1, ALIVE)
    o.rec.lost(oid, DEAD)  # not where it is (it moved, or was rebuilt already)
    assert o.resubmitted == []
    assert o.store.entries[oid].ready


def test_a_second_report_while_it_runs_again_does_not_run_it_twice() -> None:
    o = Owner()
    oid = o.finished(1, DEAD)
    o.rec.lost(oid, DEAD)
    o.rec.running = lambda task_id: True
    o.rec.lost(oid, DEAD)
    assert o.resubmitted == [_tid(1)]


def test_lost_arguments_are_rebuilt_first_even_once_freed() -> None:
    o = Owner()
    a = o.finished(1, DEAD)
    b = o.finished(2, DEAD, args=[a])
    o.drop(a)  # the user let go of the argument; its lineage stays for b
    assert a not in o.store.entries
    o.rec.lost(b, DEAD)
    assert o.resubmitted == [_tid(1), _tid(2)]
    assert not o.store.entries[a].ready  # b's new run waits for it
    assert o.refs.has(a)  # counted as b's argument again


def test_a_lost_stored_argument_on_a_dead_node_is_rebuilt_too() -> None:
    o = Owner()
    a = o.finished(1, DEAD)
    b = o.finished(2, DEAD, args=[a])
    o.rec.lost(b, DEAD)
    assert o.resubmitted == [_tid(1), _tid(2)]


def test_no_retries_left_is_max_attempts_exceeded() -> None:
    o = Owner()
    oid = o.finished(1, DEAD, retries=0)  # its name survives the stripped spec
    o.rec.lost(oid, DEAD)
    assert o.resubmitted == []
    err = o.errors[oid]
    assert type(err) is exc.ObjectReconstructionFailedMaxAttemptsExceededError
    assert "task1" in str(err)
    assert "max_retries" in str(err)


def test_retries_run_out_after_that_many_rebuilds() -> None:
    o = Owner()
    oid = o.finished(1, DEAD, retries=1)
    o.rec.lost(oid, DEAD)
    o.store.set_stored(oid, DEAD, 1000)  # it ran again, on a node that died too
    o.rec.lost(oid, DEAD)
    assert o.resubmitted == [_tid(1)]
    assert isinstance(
        o.errors[oid], exc.ObjectReconstructionFailedMaxAttemptsExceededError
    )


def test_a_lost_put_object_names_its_node() -> None:
    o = Owner()
    oid = o.put(DEAD)
    o.rec.lost(oid, DEAD)
    err = o.errors[oid]
    assert type(err) is exc.ObjectLostError
    assert "put()" in str(err)
    assert DEAD.hex() in str(err)
    assert err.object_ref_hex == oid.hex()


def test_evicted_lineage_is_reported_as_such() -> None:
    o = Owner(max_bytes=0)
    oid = o.finished(1, DEAD)
    o.rec.lost(oid, DEAD)
    err = o.errors[oid]
    assert isinstance(err, exc.ObjectReconstructionFailedLineageEvictedError)
    assert "EMBER_MAX_LINEAGE_BYTES" in str(err)


def test_a_return_of_an_unrecorded_task_cannot_be_rebuilt() -> None:
    o = Owner()
    oid = _oid(7)
    o.refs.add_local(oid, None)
    o.store.add_pending(oid)
    o.store.set_stored(oid, DEAD, 10)
    o.rec.lost(oid, DEAD)
    assert type(o.errors[oid]) is exc.ObjectReconstructionFailedError


@pytest.mark.parametrize(
    "cls",
    [
        exc.ObjectLostError,
        exc.ObjectReconstructionFailedMaxAttemptsExceededError,
        exc.ObjectReconstructionFailedLineageEvictedError,
    ],
)
def test_the_errors_pickle_with_their_message(cls: Any) -> None:
    import pickle

    from ember.runtime.recovery import lost_error

    err = lost_error(cls, _oid(1), "10.0.0.1:5", "the detail")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert "the detail" in str(back)
    assert back.object_ref_hex == _oid(1).hex()
    assert back.owner_address == "10.0.0.1:5"


def test_a_large_argument_blob_is_kept_while_the_lineage_is() -> None:
    o = Owner()
    blob = _oid(50, index=0)
    o.refs.add_submitted([blob], [None])  # counted by the pending task
    o.store.add_pending(blob)
    o.store.set_stored(blob, ALIVE, 5000)
    oid = o.finished(1, DEAD, args=[blob], blob=blob)
    o.refs.remove_submitted([blob])  # the task finished
    assert o.refs.has(blob)  # the lineage keeps it: no task could make it again
    assert o.rec.lineage.total_bytes > 5000
    o.drop(oid)
    assert not o.refs.has(blob)


def test_a_node_is_gone_only_if_the_control_service_says_so() -> None:
    import asyncio

    o = Owner()
    oid = o.finished(1, ALIVE)

    class Control:
        async def call(self, method: str, req: Any) -> Any:
            nodes = [SimpleNamespace(node_id=ALIVE, alive=True)]
            return SimpleNamespace(nodes=nodes), []

    o.links.control = Control()
    asyncio.run(o.rec.lost_if_gone(oid, ALIVE))  # a read failed, but the node lives
    assert o.resubmitted == []
    assert o.store.entries[oid].ready
    assert asyncio.run(o.rec.node_gone(OTHER))  # unknown: gone
    assert OTHER in o.links.dead_nodes


def test_a_task_with_only_inline_returns_keeps_no_lineage() -> None:
    o = Owner()
    oid = _oid(1)
    o.refs.add_local(oid, None)
    spec = SimpleNamespace(args=b"", name="small", attempt=0, args_ref=None)
    o.rec.record(_tid(1), spec, [], [oid], [], 3, stored=False)
    assert len(o.rec.lineage) == 0


def test_a_freed_small_argument_is_put_back_from_the_record() -> None:
    o = Owner()
    small = _oid(5)
    o.refs.add_local(small, None)
    o.store.add_pending(small)
    o.store.set_inline(small, b"pickled", [])
    oid = o.finished(1, DEAD, args=[small])
    o.drop(small)
    o.rec.lost(oid, DEAD)
    assert o.resubmitted == [_tid(1)]  # nothing else to run: the value is back
    e = o.store.entries[small]
    assert e.ready
    assert e.data == b"pickled"


def test_a_promoted_copy_that_cannot_be_read_is_given_up_even_on_a_live_node() -> None:
    import asyncio

    o = Owner()
    oid = o.finished(1, DEAD)
    o.store.entries[oid].copies = [ALIVE]
    o.rec.lost(oid, DEAD)
    assert o.store.entries[oid].node_id == ALIVE
    asyncio.run(o.rec.lost_if_gone(oid, ALIVE))  # that node dropped its copy
    assert o.resubmitted == [_tid(1)]


def test_a_new_task_waits_for_its_argument_lost_with_a_dead_node() -> None:
    o = Owner()
    a = o.finished(1, DEAD)
    fine = o.finished(2, ALIVE)
    o.rec.before_submit([SimpleNamespace(oid=a), SimpleNamespace(oid=fine)])
    assert o.resubmitted == [_tid(1)]
    assert not o.store.entries[a].ready  # the new task's submit waits for it
    assert o.store.entries[fine].ready
