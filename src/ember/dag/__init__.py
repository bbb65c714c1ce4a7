"""``ember.dag`` (Ray's ``ray.dag``): lazy task graphs built with ``.bind()``, run with ``execute()``.

Example::

    with InputNode() as inp:
        dag = combine.bind(Model.bind(2).forward.bind(inp), inp)
    ember.get(dag.execute(3))

Built on the public API only: executing a node calls ``.remote()`` on the
remote function, actor class or actor handle it was bound from. Ray's compiled
graphs (``experimental_compile``, ``CollectiveOutputNode``, ``DAGContext``,
``DAGOperationFuture``, ``GPUFuture``) are not implemented. ``plot`` draws a
graph (a ``.dot`` file as is; images with the optional ``pydot``).
"""

from __future__ import annotations

from ember.dag.class_node import ClassMethodNode, ClassNode
from ember.dag.constants import (
    BIND_INDEX_KEY,
    COLLECTIVE_OPERATION_KEY,
    DAGNODE_TYPE_KEY,
    IS_CLASS_METHOD_OUTPUT_KEY,
    PARENT_CLASS_NODE_KEY,
    PREV_CLASS_METHOD_CALL_KEY,
)
from ember.dag.dag_node import DAGNode
from ember.dag.function_node import FunctionNode
from ember.dag.input_node import DAGInputData, InputAttributeNode, InputNode
from ember.dag.output_node import MultiOutputNode
from ember.dag.plot import plot

__all__ = [
    "BIND_INDEX_KEY",
    "COLLECTIVE_OPERATION_KEY",
    "ClassMethodNode",
    "ClassNode",
    "DAGInputData",
    "DAGNODE_TYPE_KEY",
    "DAGNode",
    "FunctionNode",
    "IS_CLASS_METHOD_OUTPUT_KEY",
    "InputAttributeNode",
    "InputNode",
    "MultiOutputNode",
    "PARENT_CLASS_NODE_KEY",
    "PREV_CLASS_METHOD_CALL_KEY",
    "plot",
]
