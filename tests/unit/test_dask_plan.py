"""The Dask graph plan (ember.util.dask.plan): order, culling, releases, nested refs."""

from __future__ import annotations

import operator

import pytest

pytest.importorskip("dask")

from dask._task_spec import DataNode, Task, TaskRef

from ember.util.dask.plan import (
    DaskGraphError,
    graph_of,
    make_plan,
    nested_refs,
    output_keys,
    replace_nested,
)


def _inc(x):
    return x + 1


LEGACY = {
    "a": 1,
    "b": (_inc, "a"),
    "c": (_inc, "b"),
    "d": (operator.add, "b", "c"),
    "unused": (_inc, "a"),
}


def test_steps_come_after_their_dependencies_and_skip_what_is_not_wanted():
    steps = make_plan(graph_of(LEGACY), ["d"])
    keys = [s.key for s in steps]
    assert sorted(keys) == ["a", "b", "c", "d"]
    position = {k: i for i, k in enumerate(keys)}
    for s in steps:
        for dep in s.node.dependencies:
            assert position[dep] < position[s.key]


def test_a_result_is_released_after_its_last_reader_but_outputs_never():
    steps = make_plan(graph_of(LEGACY), ["d", "b"])
    released = {k for s in steps for k in s.release}
    assert released == {"a", "c"}  # b is wanted: kept to the end
    last_reader = {}
    for i, s in enumerate(steps):
        for dep in s.node.dependencies:
            last_reader[dep] = i
    for i, s in enumerate(steps):
        for k in s.release:
            assert last_reader[k] == i


def test_running_the_plan_in_order_gives_dasks_answer():
    graph = graph_of(LEGACY)
    values = {}
    for s in make_plan(graph, ["d"]):
        values[s.key] = s.node({d: values[d] for d in s.node.dependencies})
    assert values["d"] == 5  # b=2, c=3


def test_nested_output_keys_are_flattened():
    assert output_keys([["a", "b"], ["c"]]) == {"a", "b", "c"}
    assert output_keys("a") == {"a"}


def test_a_missing_key_is_a_typed_error():
    with pytest.raises(DaskGraphError, match="no task for key 'nope'"):
        make_plan(graph_of(LEGACY), ["nope"])
    with pytest.raises(DaskGraphError, match="'ghost'"):
        make_plan({"x": Task("x", _inc, TaskRef("ghost"))}, ["x"])


class _Ref:
    """Stands for an ObjectRef: what the scheduler's is_ref predicate recognises."""

    def __init__(self, name):
        self.name = name


def _is_ref(v):
    return isinstance(v, _Ref)


def _combine(a, b, k):
    return (a + b) * k


def test_refs_inlined_as_data_are_found_and_replaced_in_the_same_order():
    inner = Task(None, operator.add, DataNode(None, _Ref("x")), DataNode(None, 10))
    node = Task("t", _combine, inner, DataNode(None, _Ref("y")), k=DataNode(None, 3))
    found = nested_refs(node, _is_ref)
    assert [r.name for r in found] == ["x", "y"]
    replaced = replace_nested(node, _is_ref, iter([1, 2]))
    assert nested_refs(replaced, _is_ref) == []
    assert replaced({}) == (1 + 10 + 2) * 3


def test_a_top_level_data_node_holding_a_ref_is_replaced():
    node = DataNode("k", _Ref("z"))
    assert [r.name for r in nested_refs(node, _is_ref)] == ["z"]
    assert replace_nested(node, _is_ref, iter([42]))({}) == 42
