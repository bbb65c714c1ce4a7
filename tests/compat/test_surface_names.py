"""Ray 2.60 public names beyond the core API: ids, util helpers, context getters, wait().

Runs unchanged on real Ray (see conftest.py); RAY_NOTES.md ("public names") records
the behaviours observed there.
"""

from __future__ import annotations

import asyncio
import io
import os
import pickle
import threading

import cloudpickle
import pytest

import ember as ray
import ember.util
from ember.util.scheduling_strategies import NodeAffinitySchedulingStrategy


@pytest.mark.parametrize(
    "name",
    [
        "JobID",
        "NodeID",
        "TaskID",
        "ActorID",
        "WorkerID",
        "PlacementGroupID",
        "UniqueID",
    ],
)
def test_id_classes(name):
    cls = getattr(ray, name)
    nil = cls.nil()
    assert nil.is_nil()
    assert cls.from_binary(nil.binary()) == nil
    assert len(nil.binary()) == cls.size()
    some = cls.from_binary(os.urandom(cls.size()))
    assert not some.is_nil()
    assert some != nil
    assert hash(cls.from_binary(some.binary())) == hash(some)
    assert str(some) == repr(some) == f"{name}({some.hex()})"
    assert pickle.loads(pickle.dumps(some)) == some
    if name != "UniqueID":  # Ray's UniqueID.from_hex raises NotImplementedError
        assert cls.from_hex(some.hex()) == some
    with pytest.raises(ValueError):
        cls.from_binary(b"abc")
    with pytest.raises(TypeError):
        cls("ab")


def test_ids_of_different_kinds_differ():
    assert ray.JobID.nil() != ray.JobID.nil().binary()
    assert ray.ObjectID is ray.ObjectRef


def test_job_id_as_int():
    assert ray.JobID.from_int(1).hex() == "01000000"
    assert ray.JobID.from_int(7).int() == 7


def test_object_ref_class_methods(ray_module):
    ref = ray.put(1)
    assert ray.ObjectRef.nil().is_nil()
    assert not ref.is_nil()
    assert ray.ObjectRef.from_binary(ref.binary()) == ref
    assert len(ref.binary()) == ray.ObjectRef.size()
    assert isinstance(ref.call_site(), str)

    async def via_asyncio():
        return await ref.as_future()

    assert asyncio.run(via_asyncio()) == 1


@pytest.mark.cluster_only("local mode has no session folder")
def test_session_name_and_temp_dir(ray_module):
    ctx = ray.get_runtime_context()
    assert ctx.get_session_name().startswith("session_")
    assert ctx.get_session_name() in os.listdir(ctx.get_temp_dir())


def test_starmap_async_takes_callback_third(ray_module, wait_for):
    from ember.util.multiprocessing import Pool

    got = []
    with Pool(processes=1) as pool:
        result = pool.starmap_async(divmod, [(7, 2), (9, 4)], got.append)
        assert result.get(timeout=60) == [(3, 1), (2, 1)]
        wait_for(lambda: got == [[(3, 1), (2, 1)]], timeout=60)


def test_top_level_names():
    for name in [
        "util",
        "actor",
        "exceptions",
        "get_gpu_ids",
        "LoggingConfig",
        "DynamicObjectRefGenerator",
        "timeline",
        "client",
    ]:
        assert hasattr(ray, name), name
    assert ray.util.placement_group is ember.util.placement_group
    assert callable(ray.actor.method)
    assert ray.LoggingConfig(encoding="JSON").encoding == "JSON"
    with pytest.raises(ValueError):
        ray.LoggingConfig(encoding="XML")


def test_node_affinity_takes_node_id_objects_and_checks_hex(ray_module):
    hex_id = ray.get_runtime_context().get_node_id()
    strategy = NodeAffinitySchedulingStrategy(
        node_id=ray.NodeID.from_hex(hex_id), soft=False
    )
    assert strategy.node_id == hex_id

    @ray.remote
    def where():
        return ray.get_runtime_context().get_node_id()

    assert ray.get(where.options(scheduling_strategy=strategy).remote()) == hex_id
    with pytest.raises(ValueError, match="Invalid node_id"):
        NodeAffinitySchedulingStrategy(node_id="zz", soft=False)
    with pytest.raises(ValueError, match="Invalid node_id"):
        NodeAffinitySchedulingStrategy(node_id=ray.NodeID.nil().hex(), soft=False)


def test_gpu_ids_and_accelerators_without_gpus(ray_module):
    assert ray.get_gpu_ids() == []

    @ray.remote
    def inside():
        ctx = ray.get_runtime_context()
        return ray.get_gpu_ids(), ctx.get_accelerator_ids()["GPU"]

    assert ray.get(inside.remote()) == ([], [])


def test_context_getters_in_driver(ray_module):
    ctx = ray.get_runtime_context()
    assert ctx.get_task_name() is None
    assert ctx.get_task_function_name() is None
    assert ctx.get_placement_group_id() is None
    assert ctx.get_runtime_env_string() == "{}"
    assert ctx.runtime_env == {}
    assert isinstance(ctx.gcs_address, str)
    assert ctx.gcs_address
    with pytest.raises(RuntimeError):
        ctx.current_actor  # noqa: B018
    with pytest.raises(RuntimeError):
        ctx.is_canceled()


def test_context_getters_in_tasks_and_actors(ray_module):
    @ray.remote
    def task():
        ctx = ray.get_runtime_context()
        return (
            ctx.get_task_name(),
            ctx.get_task_function_name().rsplit(".", 1)[-1],
            ctx.is_canceled(),
            ctx.get_placement_group_id(),
            ctx.runtime_env,
        )

    name, fn, canceled, pg, env = ray.get(
        task.options(name="named", runtime_env={"env_vars": {"X": "1"}}).remote()
    )
    assert (name, fn, canceled, pg) == ("named", "task", False, None)
    assert env == {"env_vars": {"X": "1"}}
    assert ray.get(task.remote())[0] == "task"

    @ray.remote
    class Act:
        def info(self):
            ctx = ray.get_runtime_context()
            me = ctx.current_actor
            return ctx.get_task_name(), ctx.get_task_function_name(), me

        def ping(self):
            return "pong"

    a = Act.remote()
    name, fn, me = ray.get(a.info.remote())
    assert name == "Act.info"
    assert fn.endswith("Act.info")
    assert ray.get(me.ping.remote()) == "pong"


def test_util_module_pickles_inside_tasks(ray_module):
    util = ember.util

    @ray.remote
    def uses_util():
        return callable(util.placement_group), callable(util.get_placement_group)

    assert ray.get(uses_util.remote()) == (True, True)
    assert pickle.loads(cloudpickle.dumps(util)) is util


def test_as_completed_and_map_unordered(ray_module):
    @ray.remote
    def sq(x):
        return x * x

    assert sorted(
        ray.util.as_completed([sq.remote(i) for i in range(5)], chunk_size=2)
    ) == [
        0,
        1,
        4,
        9,
        16,
    ]
    assert sorted(ray.util.map_unordered(sq, range(6), backpressure_size=2)) == [
        0,
        1,
        4,
        9,
        16,
        25,
    ]
    refs = list(ray.util.as_completed([sq.remote(3)], yield_obj_refs=True))
    assert ray.get(refs) == [9]
    with pytest.raises(ValueError):
        list(ray.util.as_completed([], chunk_size=0))


class _Unpicklable:
    def __init__(self, n):
        self.n = n
        self.lock = threading.Lock()


def test_register_serializer_changes_how_values_travel(ray_module):
    ray.util.register_serializer(
        _Unpicklable,
        serializer=lambda o: o.n,
        deserializer=lambda n: _Unpicklable(n + 1),
    )
    try:
        assert ray.get(ray.put(_Unpicklable(1))).n == 2
    finally:
        ray.util.deregister_serializer(_Unpicklable)
    with pytest.raises(TypeError):
        ray.put(_Unpicklable(1))


def test_inspect_serializability():
    out = io.StringIO()
    ok, failures = ray.util.inspect_serializability(
        {"lock": threading.Lock()}, name="d", print_file=out
    )
    assert not ok
    assert failures
    assert "FAIL" in out.getvalue()
    assert ray.util.inspect_serializability([1, 2], print_file=io.StringIO())[0]


def test_log_once():
    assert ray.util.log_once("names-test-key")
    assert not ray.util.log_once("names-test-key")
    assert isinstance(ray.util.get_node_instance_id(), str)
    assert ray.util.accelerators.NVIDIA_TESLA_V100 == "V100"


def test_wait_argument_checks(ray_module):
    r = ray.put(1)
    assert ray.wait([], num_returns=0) == ([], [])
    assert ray.wait([], num_returns=2) == ([], [])
    with pytest.raises(TypeError):
        ray.wait(r)
    with pytest.raises(TypeError):
        ray.wait((r,))
    with pytest.raises(TypeError):
        ray.wait([r, 1])
    with pytest.raises(ValueError, match="unique"):
        ray.wait([r, r])
    with pytest.raises(ValueError, match="Invalid number of objects to return 0"):
        ray.wait([r], num_returns=0)
    with pytest.raises(ValueError, match="Invalid number of objects to return -1"):
        ray.wait([r], num_returns=-1)
    with pytest.raises(ValueError, match="num_returns cannot be greater"):
        ray.wait([r], num_returns=2)
    with pytest.raises(ValueError, match="nonnegative"):
        ray.wait([r], timeout=-1)
    assert ray.wait([r], timeout=0.5) == ([r], [])
    assert ray.wait([r], fetch_local=False) == ([r], [])


@pytest.mark.ember_only
def test_ray_client_is_refused_with_the_address_to_use():
    if ray.is_initialized():
        ray.shutdown()
    with pytest.raises(NotImplementedError, match="HOST:PORT"):
        ray.client()
    with pytest.raises(NotImplementedError, match="HOST:PORT"):
        ray.init(address="ray://127.0.0.1:10001")
    assert not ray.is_initialized()


@pytest.mark.cluster_only("starts its own cluster")
def test_cluster_utils_gcs_address_and_processes(shutdown_only):
    from ember.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        assert cluster.gcs_address == cluster.address
        assert cluster.remaining_processes_alive()
    finally:
        cluster.shutdown()


@pytest.mark.cluster_only("cancels a running task")
def test_is_canceled_after_cancel(ray_module, signal_cls, counter_cls, wait_for):
    sig = signal_cls.remote()
    seen = counter_cls.remote()

    @ray.remote(max_retries=0)
    def waits(sig, seen):
        ctx = ray.get_runtime_context()
        before = ctx.is_canceled()
        try:
            ray.get(sig.wait.remote())
        except KeyboardInterrupt:
            ray.get(seen.incr.remote(10 + int(ctx.is_canceled()) + 2 * int(before)))
            raise

    ref = waits.remote(sig, seen)
    wait_for(lambda: ray.get(sig.num_waiting.remote()) == 1, timeout=60)
    ray.cancel(ref)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref, timeout=60)
    wait_for(lambda: ray.get(seen.get.remote()) != 0, timeout=60)
    assert ray.get(seen.get.remote()) == 11  # canceled now, and not before
