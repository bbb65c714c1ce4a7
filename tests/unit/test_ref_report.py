"""A core worker's ref report, the state API's rows and summary, ``ember memory``'s text.

No processes: a real RefCounter and MemoryStore are filled as a core worker
fills them, and the report is read as ``worker.list_objects`` answers it.
"""

from __future__ import annotations

import ctypes
import weakref

import pytest

from ember.cli.memory_cmd import format_refs, format_store_stats
from ember.common.clock import MonotonicClock
from ember.common.ids import object_id_for, random_id
from ember.protocol.messages import (
    Address,
    CoreWorkerObjects,
    ListStateRequest,
    NodeInfo,
    NodeObjectsReply,
    NodeStatsReply,
)
from ember.runtime.memory_store import MemoryStore, ObjEntry
from ember.runtime.object_ref import ObjectRef
from ember.runtime.ownership import RefCounter
from ember.runtime.ref_report import (
    ACTOR_HANDLE_INDEX,
    CallSites,
    RefReport,
    call_sites_enabled,
    reference_type,
)
from ember.util.state.common import check_filters
from ember.util.state.exception import RayStateApiException
from ember.util.state.objects import (
    NodeObjects,
    ObjectsSnapshot,
    ObjectState,
    check_complete,
    reply_of,
    rows_of,
    summary_of,
)

ME = random_id()
NODE = random_id()
OTHER = Address(worker_id=random_id(), node_id=random_id(), tcp="tcp:10.0.0.2:1")


class Report:
    """A RefCounter, a MemoryStore and a RefReport over them, without a loop."""

    def __init__(self, statuses=None, actors=(), sites=False) -> None:
        self.refs = RefCounter(ME, lambda oid, e: None, lambda oid, owner: None)
        self.store = MemoryStore(MonotonicClock(), self.refs.has)
        self.escrow: dict[bytes, list] = {}
        self.mapped: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self.sites = CallSites(self.refs, lambda: "") if sites else None
        if self.sites is not None:
            self.sites.install()
        self.report = RefReport(
            self.refs,
            self.store,
            self.escrow,
            lambda: dict(statuses or {}),
            lambda: list(actors),
            lambda: (ME, NODE, "10.0.0.1", True),
            self.sites,
            self.mapped,
        )

    def owned(self, size: int = 10, stored: bool = False, local: int = 1) -> bytes:
        oid = object_id_for(random_id(), 0)
        for _ in range(local):
            self.refs.add_local(oid, None)
        e = ObjEntry()
        e.ready, e.size = True, size
        if stored:
            e.node_id = NODE
        else:
            e.data = b"x" * size
        self.store.insert(oid, e)
        return oid

    def by_id(self) -> dict[bytes, object]:
        records, _total = self.report.records(10_000)
        return {r.oid: r for r in records}


def test_reference_types_follow_rays_precedence():
    assert (
        reference_type(actor_handle=True, pinned=True, submitted=1, local=1, captured=1)
        == "ACTOR_HANDLE"
    )
    assert (
        reference_type(
            actor_handle=False, pinned=True, submitted=1, local=1, captured=0
        )
        == "PINNED_IN_MEMORY"
    )
    assert (
        reference_type(
            actor_handle=False, pinned=False, submitted=1, local=1, captured=0
        )
        == "USED_BY_PENDING_TASK"
    )
    assert (
        reference_type(
            actor_handle=False, pinned=False, submitted=0, local=1, captured=1
        )
        == "LOCAL_REFERENCE"
    )
    assert (
        reference_type(
            actor_handle=False, pinned=False, submitted=0, local=0, captured=1
        )
        == "CAPTURED_IN_OBJECT"
    )
    assert (
        reference_type(
            actor_handle=False, pinned=False, submitted=0, local=0, captured=0
        )
        == "UNKNOWN_STATUS"
    )


def test_a_value_is_pinned_while_something_read_from_its_extent_lives():
    r = Report()
    small = r.owned(size=12)
    big = r.owned(size=5_000_000, stored=True)
    rows = r.by_id()
    assert rows[small].reference_type == "LOCAL_REFERENCE"
    assert rows[small].size == 12
    assert not rows[small].stored
    # in the store, but nothing read from it here: a local reference (as Ray)
    assert rows[big].reference_type == "LOCAL_REFERENCE"
    assert rows[big].stored
    assert rows[big].node_id == NODE
    assert rows[big].task_status == "FINISHED"
    extent = (ctypes.c_char * 64).from_buffer(bytearray(64))
    r.mapped[big] = extent
    r.store.entries[big].mapping = extent  # the entry's cache alone: not in use
    del extent
    assert r.by_id()[big].reference_type == "LOCAL_REFERENCE"
    value = memoryview(r.store.entries[big].mapping)  # a value read from it
    assert r.by_id()[big].reference_type == "PINNED_IN_MEMORY"
    # the ref goes (and its entry); the value keeps the object pinned
    r.refs.remove_local(big)
    del r.store.entries[big]
    row = r.by_id()[big]
    assert row.reference_type == "PINNED_IN_MEMORY"
    assert row.size == 64
    assert row.task_status == "NIL"
    del value
    assert big not in r.by_id()


def test_an_argument_of_a_pending_task_is_used_by_it_with_that_tasks_status():
    r = Report()
    arg = r.owned()
    r.refs.add_submitted([arg], [None])
    ret = object_id_for(random_id(), 1)
    r.refs.add_local(ret, None)
    r.store.add_pending(ret)
    r.report._statuses = lambda: {ret[:16]: ("SUBMITTED_TO_WORKER", 2)}
    rows = r.by_id()
    assert rows[arg].reference_type == "USED_BY_PENDING_TASK"
    assert rows[ret].task_status == "SUBMITTED_TO_WORKER"
    assert rows[ret].attempt_number == 2
    assert rows[ret].size == -1  # not known before the task returns


def test_a_ref_only_inside_another_value_is_captured():
    r = Report()
    inner = r.owned(local=0)
    ref = ObjectRef(inner, None, _register=False)
    r.refs.add_local(inner, None)  # as ObjectRef() counts itself
    outer = r.owned()
    r.refs.set_contained(outer, [ref])  # put([ref]) keeps that very instance
    # the user still holds it: a local reference
    assert r.by_id()[inner].reference_type == "LOCAL_REFERENCE"
    del ref  # only the outer value holds it now
    row = r.by_id()[inner]
    assert row.reference_type == "CAPTURED_IN_OBJECT"
    assert row.local_refs == 0
    assert r.by_id()[outer].reference_type == "LOCAL_REFERENCE"


def test_refs_in_escrow_count_as_captured():
    r = Report()
    oid = object_id_for(random_id(), 0)
    r.refs.add_local(oid, None)
    r.escrow[random_id()] = [ObjectRef(oid, None, _register=False)]
    assert r.by_id()[oid].reference_type == "CAPTURED_IN_OBJECT"


def test_one_ref_inside_two_values_is_captured_by_both():
    r = Report()
    oid = object_id_for(random_id(), 0)
    r.refs.add_local(oid, None)
    ref = ObjectRef(oid, None, _register=False)
    r.refs.set_contained(r.owned(), [ref])
    r.refs.set_contained(r.owned(), [ref])
    del ref
    assert r.by_id()[oid].reference_type == "CAPTURED_IN_OBJECT"


def test_a_ref_kept_only_for_remote_borrowers_is_not_listed_here():
    r = Report()
    oid = r.owned()
    r.refs.add_borrower(oid, OTHER.worker_id)
    r.refs.remove_local(oid)
    assert oid not in r.by_id()


def test_a_borrowed_ref_is_not_pinned_and_has_no_task_status():
    r = Report()
    oid = object_id_for(random_id(), 0)
    r.refs.add_local(oid, OTHER)
    row = r.by_id()[oid]
    assert not row.owned
    assert row.reference_type == "LOCAL_REFERENCE"
    assert row.task_status == "NIL"
    assert row.size == -1


def test_actor_handles_get_a_row_each():
    actor = random_id()
    r = Report(actors=[actor])
    rows = r.by_id()
    row = rows[actor + ACTOR_HANDLE_INDEX]
    assert row.reference_type == "ACTOR_HANDLE"


def test_the_limit_keeps_the_largest_and_counts_them_all():
    r = Report()
    sizes = [5, 500, 50]
    oids = [r.owned(size=s) for s in sizes]
    records, total = r.report.records(2)
    assert total == 3
    assert {x.oid for x in records} == {oids[1], oids[2]}


def test_the_handler_names_the_process():
    r = Report()
    r.owned()
    reply = r.report.h_list_objects(None, type("Req", (), {"limit": 10})(), [])
    assert isinstance(reply, CoreWorkerObjects)
    assert reply.is_driver
    assert reply.ip == "10.0.0.1"
    assert reply.node_id == NODE
    assert reply.total == 1
    assert not reply.call_sites


def test_call_sites_record_the_users_line_only_when_switched_on(monkeypatch):
    monkeypatch.delenv("EMBER_RECORD_REF_CREATION_SITES", raising=False)
    monkeypatch.delenv("RAY_record_ref_creation_sites", raising=False)
    assert not call_sites_enabled()
    assert call_sites_enabled({"EMBER_RECORD_REF_CREATION_SITES": "1"})
    assert call_sites_enabled({"RAY_record_ref_creation_sites": "1"})
    assert not call_sites_enabled({"EMBER_RECORD_REF_CREATION_SITES": "0"})
    r = Report(sites=True)
    oid = r.owned()  # add_local called from this test function
    site = r.by_id()[oid].call_site
    assert site.startswith(__file__)
    assert ":owned:" in site


def test_call_sites_of_gone_refs_are_pruned_as_the_table_grows():
    r = Report(sites=True)
    for _ in range(5000):
        oid = object_id_for(random_id(), 0)
        r.refs.add_local(oid, None)
        r.refs.remove_local(oid)
    assert len(r.sites.sites) <= 4097


def _worker(is_driver: bool, pid: int, refs) -> CoreWorkerObjects:
    return CoreWorkerObjects(
        worker_id=random_id(),
        pid=pid,
        is_driver=is_driver,
        ip="10.0.0.1",
        node_id=NODE,
        refs=refs,
        total=len(refs),
    )


def _snapshot() -> ObjectsSnapshot:
    r = Report()
    big = r.owned(size=3_000_000, stored=True)
    small = r.owned(size=20)
    extent = (ctypes.c_char * 64).from_buffer(bytearray(64))
    r.mapped[big] = extent
    value = memoryview(extent)  # read by this process, still in use: pinned
    del extent
    records, _ = r.report.records(100)
    del value
    driver = _worker(True, 100, records)
    spilled = {big}
    snap = ObjectsSnapshot(rows=rows_of(driver, spilled), total=2)
    info = NodeInfo(
        node_id=NODE, address="tcp:10.0.0.1:1", unix="", ip="10.0.0.1", resources={}
    )
    stats = NodeStatsReply(
        node_id=NODE,
        resources={},
        available={},
        store_used=3 * 2**20,
        store_capacity=100 * 2**20,
        store_objects=1,
        workers=1,
        idle_workers=1,
        spilled_objects=1,
        spilled_bytes=3 * 2**20,
    )
    snap.nodes = [NodeObjects(info, stats, NodeObjectsReply(node_id=NODE))]
    snap.big, snap.small = big.hex(), small.hex()  # type: ignore[attr-defined]
    return snap


def test_rows_carry_rays_fields_and_the_spilled_mark():
    snap = _snapshot()
    rows = {row["object_id"]: row for row in snap.rows}
    big = rows[snap.big]
    assert big["type"] == "DRIVER"
    assert big["pid"] == 100
    assert big["ip"] == "10.0.0.1"
    assert big["call_site"] == "disabled"
    assert big["spilled"]
    assert not rows[snap.small]["spilled"]


def test_rows_are_filtered_sorted_and_limited_as_rays():
    snap = _snapshot()
    pinned = ListStateRequest(
        resource="objects",
        filters=check_filters(
            [("reference_type", "=", "pinned_in_memory")], ObjectState, "objects"
        ),
        limit=10,
    )
    assert [r["object_id"] for r in reply_of(snap, pinned).rows] == [snap.big]
    other = ListStateRequest(
        resource="objects",
        filters=check_filters([("pid", "!=", "100")], ObjectState, "objects"),
    )
    assert reply_of(snap, other).rows == []
    one = reply_of(snap, ListStateRequest(resource="objects", limit=1))
    assert one.num_filtered == 2
    assert len(one.rows) == 1
    assert one.rows[0]["object_id"] == min(snap.big, snap.small)
    with pytest.raises(RayStateApiException, match="filtered by 'colour'"):
        check_filters([("colour", "=", "red")], ObjectState, "objects")
    row = ObjectState.from_row(one.rows[0], detail=False)
    assert set(row.asdict()) == {
        "object_id",
        "object_size",
        "task_status",
        "attempt_number",
        "reference_type",
        "call_site",
        "type",
        "pid",
        "ip",
    }


def test_missing_answers_raise_or_warn():
    snap = _snapshot()
    check_complete(snap, True)  # complete: nothing to say
    snap.nodes.append(NodeObjects(snap.nodes[0].info, error="refused"))
    with pytest.raises(RayStateApiException, match="1 of 2 nodes did not answer"):
        check_complete(snap, True)
    with pytest.warns(UserWarning, match="did not answer"):
        check_complete(snap, False)
    snap.nodes.pop()
    snap.total = 5
    with pytest.raises(RayStateApiException, match="hold 5 refs"):
        check_complete(snap, True)


def test_summary_groups_by_call_site_as_rays():
    snap = _snapshot()
    s = summary_of(snap.rows)
    assert s["total_objects"] == 2
    assert s["summary_by"] == "callsite"
    assert not s["callsite_enabled"]
    group = s["summary"]["disabled"]
    assert group["total_objects"] == 2
    assert group["total_num_workers"] == 1
    assert group["total_num_nodes"] == 1
    assert group["ref_type_counts"] == {"PINNED_IN_MEMORY": 1, "LOCAL_REFERENCE": 1}
    assert group["task_state_counts"] == {"FINISHED": 2}
    assert group["task_attempt_number_counts"] == {"1": 2}
    assert group["total_size_mb"] == pytest.approx((3_000_000 + 20) / 2**20)


def test_memory_text_groups_sorts_and_sums():
    snap = _snapshot()
    text = format_refs(snap, "NODE_ADDRESS", "OBJECT_SIZE", "MB")
    assert "--- Summary for node address: 10.0.0.1 ---" in text
    assert "Spilled to disk: 1, (3.0 MB)" in text
    table = text.split("--- Object references for node address: 10.0.0.1 ---")[1]
    assert table.index(snap.small) < table.index(snap.big)  # ascending size
    assert "EMBER_RECORD_REF_CREATION_SITES=1" in text
    one = format_refs(snap, "STACK_TRACE", "PID", "B", num_entries=1)
    assert "--- Summary for stack trace: disabled ---" in one
    assert (snap.small in one) != (snap.big in one)


def test_store_stats_sum_the_nodes_and_say_what_was_spilled():
    text = format_store_stats(_snapshot())
    assert "Object store memory usage 3 MiB, 1 objects, 3.0% full" in text
    assert "Spilled 3 MiB, 1 objects" in text
    assert "Restored" not in text


def test_a_node_that_did_not_answer_is_named():
    snap = _snapshot()
    snap.nodes.append(NodeObjects(snap.nodes[0].info, error="connection refused"))
    assert "1 of 2 nodes did not answer" in snap.partial_failure_warning()
    assert "did not answer" in format_store_stats(snap)
