"""The lazy DAG API (``ray.dag``): ``.bind()`` on functions, actor classes and methods,
InputNode / InputAttributeNode, MultiOutputNode, nested nodes, shared nodes, options."""

from __future__ import annotations

import types
import warnings

import pytest

import ember as ray
from ember.dag import (
    ClassMethodNode,
    ClassNode,
    DAGNode,
    FunctionNode,
    InputAttributeNode,
    InputNode,
    MultiOutputNode,
)


@pytest.fixture(autouse=True)
def _quiet_execute_deprecation():
    # Ray 2.60 deprecates DAGNode.execute(); the warning is checked once, below.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


@ray.remote
def add(a, b):
    return a + b


@ray.remote
def double(x):
    return 2 * x


@ray.remote
def pair(x):
    return x, x + 1


@ray.remote
def get_all(refs):
    # Nodes nested in a container arrive as ObjectRefs, as refs nested in args do.
    return [ray.get(r) for r in refs]


@ray.remote
class Counter:
    def __init__(self, start=0):
        self.value = start

    def inc(self, by=1):
        self.value += by
        return self.value

    def read(self):
        return self.value

    @ray.method(num_returns=2)
    def split(self, x):
        return x, -x


def test_function_chain(ray_module):
    dag = double.bind(add.bind(1, 2))
    assert isinstance(dag, FunctionNode)
    assert isinstance(dag, DAGNode)
    ref = dag.execute()
    assert isinstance(ref, ray.ObjectRef)
    assert ray.get(ref) == 6


def test_input_node_single_value(ray_module):
    with InputNode() as inp:
        dag = add.bind(double.bind(inp), inp)
    assert ray.get(dag.execute(3)) == 9
    assert ray.get(dag.execute(10)) == 30


def test_input_attribute_nodes_index_and_key(ray_module):
    with InputNode() as inp:
        first = inp[0]
        assert isinstance(first, InputAttributeNode)
        dag = add.bind(add.bind(first, inp[1]), inp.x)
    # several arguments: [i] is the i-th positional one, .x the keyword one
    assert ray.get(dag.execute(1, 2, x=30)) == 33


def test_input_attribute_nodes_on_one_object(ray_module):
    with InputNode() as inp:
        by_index = add.bind(inp[0], inp[1])
    assert ray.get(by_index.execute([4, 5])) == 9

    with InputNode() as inp:
        by_key = add.bind(inp["a"], inp["b"])
    assert ray.get(by_key.execute({"a": 1, "b": 2})) == 3

    with InputNode() as inp:
        by_attr = add.bind(inp.m1, inp.m2)
    assert ray.get(by_attr.execute(types.SimpleNamespace(m1=10, m2=20))) == 30


def test_keyword_arguments_bound(ray_module):
    with InputNode() as inp:
        dag = add.bind(a=inp, b=double.bind(x=inp))
    assert ray.get(dag.execute(2)) == 6


def test_multi_output_node(ray_module):
    with InputNode() as inp:
        dag = MultiOutputNode([double.bind(inp), add.bind(inp, 1)])
    refs = dag.execute(5)
    assert isinstance(refs, list)
    assert len(refs) == 2
    assert all(isinstance(r, ray.ObjectRef) for r in refs)
    assert ray.get(refs) == [10, 6]


def test_nested_nodes_in_lists_and_dicts(ray_module):
    @ray.remote
    def collect(items, mapping):
        return [ray.get(r) for r in items], {k: ray.get(v) for k, v in mapping.items()}

    with InputNode() as inp:
        dag = collect.bind([double.bind(inp), add.bind(inp, 1)], {"k": double.bind(1)})
    assert ray.get(dag.execute(3)) == ([6, 4], {"k": 2})
    assert ray.get(get_all.bind([double.bind(2), double.bind(3)]).execute()) == [4, 6]


def test_shared_node_runs_once_per_execute(ray_module, counter_cls):
    counter = counter_cls.remote()

    @ray.remote
    def bump(c, x):
        ray.get(c.incr.remote())
        return x

    with InputNode() as inp:
        shared = bump.bind(counter, inp)
        dag = add.bind(double.bind(shared), shared)
    assert ray.get(dag.execute(1)) == 3
    assert ray.get(counter.get.remote()) == 1
    assert ray.get(dag.execute(2)) == 6
    assert ray.get(counter.get.remote()) == 2


def test_actor_class_node_makes_a_new_actor_per_execute(ray_module):
    with InputNode() as inp:
        actor = Counter.bind(10)
        assert isinstance(actor, ClassNode)
        dag = actor.inc.bind(inp)
        assert isinstance(dag, ClassMethodNode)
    assert ray.get(dag.execute(1)) == 11
    assert ray.get(dag.execute(5)) == 15  # a fresh actor: not 16


def test_class_node_execute_returns_an_actor_handle(ray_module):
    handle = Counter.bind(7).execute()
    assert isinstance(handle, ray.actor.ActorHandle)
    assert ray.get(handle.read.remote()) == 7


def test_method_calls_on_a_class_node_run_in_binding_order(ray_module):
    actor = Counter.bind(0)
    actor.inc.bind(1)
    actor.inc.bind(10)
    last = actor.read.bind()
    # executing the last call runs the calls bound before it on the same actor
    assert ray.get(last.execute()) == 11


def test_actor_node_as_argument_and_models_combined(ray_module):
    @ray.remote
    class Model:
        def __init__(self, weight):
            self.weight = weight

        def forward(self, x):
            return self.weight * x

    with InputNode() as inp:
        m1, m2 = Model.bind(2), Model.bind(3)
        dag = add.bind(m1.forward.bind(inp[0]), m2.forward.bind(inp.x))
    assert ray.get(dag.execute(1, x=2)) == 8


def test_live_actor_handle_bind_keeps_state(ray_module):
    handle = Counter.remote(0)
    with InputNode() as inp:
        dag = handle.inc.bind(inp)
    assert isinstance(dag, ClassMethodNode)
    assert ray.get(dag.execute(1)) == 1
    assert ray.get(dag.execute(2)) == 3
    assert ray.get(handle.read.remote()) == 3


def test_live_handle_multiple_returns_bind_to_a_tuple(ray_module):
    handle = Counter.remote()
    with InputNode() as inp:
        outs = handle.split.bind(inp)
        assert isinstance(outs, tuple)
        assert len(outs) == 2
        dag = MultiOutputNode(list(outs))
    assert ray.get(dag.execute(4)) == [4, -4]

    with InputNode() as inp:
        a, b = handle.split.options(num_returns=2).bind(inp)
        dag = add.bind(a, b)
    assert ray.get(dag.execute(9)) == 0


def test_options_on_bound_nodes(ray_module):
    refs = pair.options(num_returns=2).bind(3).execute()
    assert isinstance(refs, list)
    assert ray.get(refs) == [3, 4]

    actor = Counter.options(num_cpus=0).bind(1)
    node = actor.split.options(num_returns=2).bind(5)
    assert ray.get(node.execute()) == [5, -5]

    @ray.remote
    def cpus():
        return ray.get_runtime_context().get_assigned_resources().get("CPU")

    assert ray.get(cpus.options(num_cpus=0.5).bind().execute()) == 0.5


def test_errors_propagate_through_the_dag(ray_module):
    @ray.remote
    def boom(x):
        raise ValueError(f"bad {x}")

    with InputNode() as inp:
        dag = add.bind(boom.bind(inp), 1)
    with pytest.raises(ValueError, match="bad 7"):
        ray.get(dag.execute(7))


def test_execute_is_deprecated(ray_module):
    with pytest.warns(DeprecationWarning, match="execute"):
        ref = add.bind(1, 1).execute()
    assert ray.get(ref) == 2


def test_misuse_raises(ray_module):
    node = add.bind(1, 2)
    with pytest.raises(AttributeError, match="execute"):
        node.remote()
    with pytest.raises(AttributeError):
        node.bind(1)
    with pytest.raises(ValueError):
        InputNode(1)
    with InputNode() as inp, pytest.raises(ValueError):
        Counter.bind(inp)
    with pytest.raises(AttributeError):
        Counter.bind().no_such_method  # noqa: B018
    with pytest.raises(AttributeError):
        Counter.bind().inc.remote()


def test_input_node_needs_its_context_manager(ray_module):
    inp = InputNode()
    dag = add.bind(inp, 1)
    with pytest.raises(AssertionError):
        dag.execute(1)


def test_one_input_node_per_dag(ray_module):
    with InputNode() as a, InputNode() as b:
        dag = add.bind(a, b)
    with pytest.raises(AssertionError, match="one unique InputNode"):
        dag.execute(1)
