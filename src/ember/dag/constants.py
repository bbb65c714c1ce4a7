"""Reserved keys of a DAG node's ``other_args_to_resolve`` (the names Ray exports)."""

from __future__ import annotations

#: the ClassNode (or live ActorHandle) a ClassMethodNode calls
PARENT_CLASS_NODE_KEY = "parent_class_node"
#: the method call bound before this one on the same ClassNode (runs first)
PREV_CLASS_METHOD_CALL_KEY = "prev_class_method_call"
#: how many calls were bound on a live actor handle before this one
BIND_INDEX_KEY = "bind_index"
#: the node picks one return value out of a multi-return method call
IS_CLASS_METHOD_OUTPUT_KEY = "is_class_method_output"
#: used by Ray's compiled graphs' collective nodes (not implemented by ember)
COLLECTIVE_OPERATION_KEY = "collective_operation"
#: marks a serialized DAG node in a user dict
DAGNODE_TYPE_KEY = "__dag_node_type__"
