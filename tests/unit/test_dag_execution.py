"""ember.dag's executor without a cluster: bodies are plain objects with ``.remote``."""

from __future__ import annotations

import warnings

from ember.dag import FunctionNode, InputNode, MultiOutputNode


class Body:
    """Records calls; ``remote`` returns what the function returns (no cluster)."""

    def __init__(self, fn):
        self.fn = fn
        self.calls = 0

    def remote(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


def bind(body, *args, **kwargs):
    return FunctionNode(body, args, kwargs, {})


def execute(node, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return node.execute(*args, **kwargs)


def test_long_chain_does_not_hit_the_recursion_limit():
    inc = Body(lambda x: x + 1)
    with InputNode() as inp:
        node = inp
        for _ in range(5000):
            node = bind(inc, node)
    assert execute(node, 0) == 5000
    assert inc.calls == 5000


def test_shared_node_runs_once_and_nested_nodes_are_replaced_in_copies():
    src = Body(lambda x: x * 10)
    collect = Body(lambda *a, **k: (a, k))
    with InputNode() as inp:
        shared = bind(src, inp)
        args = [shared, {"k": (shared, {shared})}]
        node = bind(collect, *args, kw=[shared])
    out = execute(node, 2)
    assert out == ((20, {"k": (20, {20})}), {"kw": [20]})
    assert src.calls == 1
    assert args[1]["k"][0] is shared  # the bound containers are left as they were
    assert execute(MultiOutputNode([shared, node]), 3)[0] == 30
    assert src.calls == 2
