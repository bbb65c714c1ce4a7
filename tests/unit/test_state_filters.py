"""The state API's filters: checked against a schema on the client, matched on rows."""

from __future__ import annotations

import pytest

from ember.common.state_filters import matches, select
from ember.util.state.common import check_filters, conflicting
from ember.util.state.exception import RayStateApiException
from ember.util.state.schemas import NodeState, TaskState, WorkerState

ROW = {"state": "RUNNING", "pid": 12, "is_alive": True, "name": "f", "actor_id": None}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([("state", "=", "running")], True),  # strings: case-insensitive
        ([("state", "!=", "RUNNING")], False),
        ([("pid", "=", "12")], True),  # a string read as the column's int
        ([("pid", "=", 13)], False),
        ([("is_alive", "=", "false")], False),
        ([("is_alive", "=", "1")], True),
        ([("state", "=", "RUNNING"), ("name", "=", "g")], False),  # AND
        ([("missing", "=", "x")], False),
        ([("actor_id", "=", "")], True),  # an empty column is ""
    ],
)
def test_matches(filters, expected):
    assert matches(ROW, filters) is expected


def test_select_counts_every_match_but_keeps_limit():
    rows = [{"n": i % 3} for i in range(10)]
    kept, matched = select(rows, [("n", "=", 0)], 2)
    assert kept == [{"n": 0}, {"n": 0}]
    assert matched == 4


def test_check_filters_converts_values_to_the_column_types():
    checked = check_filters(
        [("PID", "=", "3"), ("is_alive", "!=", "True")], WorkerState, "workers"
    )
    assert [(f.key, f.predicate, f.value) for f in checked] == [
        ("pid", "=", 3),
        ("is_alive", "!=", True),
    ]


def test_bad_filters_raise_typed_errors():
    with pytest.raises(ValueError, match="predicate"):
        check_filters([("state", ">", "x")], TaskState, "tasks")
    with pytest.raises(ValueError, match="triple"):
        check_filters([("state", "RUNNING")], TaskState, "tasks")
    with pytest.raises(RayStateApiException, match="labels"):
        check_filters([("labels", "=", "x")], NodeState, "nodes")  # not filterable
    with pytest.raises(RayStateApiException, match="int"):
        check_filters([("attempt_number", "=", "two")], TaskState, "tasks")


def test_conflicting_equalities_warn():
    checked = check_filters(
        [("state", "=", "A"), ("state", "=", "B")], TaskState, "tasks"
    )
    with pytest.warns(UserWarning, match="nothing can match"):
        assert conflicting(checked)


def test_rows_read_as_attributes_and_as_dicts():
    node = NodeState.from_row(
        {
            "node_id": "ab",
            "node_ip": "1.2.3.4",
            "is_head_node": True,
            "state": "ALIVE",
            "state_message": None,
            "node_name": "1.2.3.4",
            "resources_total": {"CPU": 1.0},
            "labels": {},
            "start_time_ms": 5,
        },
        detail=False,
    )
    assert node.state == node["state"] == node.get("state") == "ALIVE"
    assert node.start_time_ms is None  # a detail column, not asked for
    assert node.asdict()["resources_total"] == {"CPU": 1.0}
    assert "start_time_ms" in NodeState.detail_columns() - NodeState.base_columns()
