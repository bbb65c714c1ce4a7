"""ember.util.collective on a real local cluster: the collectives among actors.

Every test runs real actor processes; the ranks of a group are separate
worker processes exchanging data through the object store and the group's
mailbox actor.
"""

from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import wait_until

import ember
import ember.util.collective as col
from ember.util.collective import ReduceOp

pytestmark = pytest.mark.multiprocess

BIG = 100_000  # float64 elements: 800 KB, beyond the inline size (object store path)


@pytest.fixture(scope="module")
def cluster():
    ember.init(num_cpus=2)
    yield
    ember.shutdown()


@ember.remote(num_cpus=0)
class Rank:
    def __init__(self, world_size: int, rank: int, group: str, timeout_ms: int = 30000):
        self.rank = rank
        self.world_size = world_size
        self.group = group
        if group:
            col.init_collective_group(
                world_size,
                rank,
                backend="gloo",
                group_name=group,
                gloo_timeout=timeout_ms,
            )

    def info(self):
        return col.get_rank(self.group), col.get_collective_group_size(self.group)

    def allreduce(self, n: int, op=ReduceOp.SUM):
        x = np.arange(n, dtype=np.float64) * 0.1 + self.rank + 1
        col.allreduce(x, self.group, op)
        return x

    def allreduce_2d(self):
        x = np.full((3, 4), float(self.rank + 1), dtype=np.float32)
        col.allreduce(x, self.group)
        return x

    def broadcast(self, n: int, src: int):
        x = np.full(n, float(self.rank), dtype=np.float64)
        col.broadcast(x, src, self.group)
        return x

    def reduce(self, dst: int):
        x = np.full(5, float(self.rank + 1))
        col.reduce(x, dst, self.group, ReduceOp.MAX)
        return x

    def allgather(self, n: int):
        outs = [np.zeros(n, dtype=np.int64) for _ in range(self.world_size)]
        col.allgather(outs, np.full(n, self.rank, dtype=np.int64), self.group)
        return outs

    def reducescatter(self):
        ins = [np.full(4, float(10 * self.rank + r)) for r in range(self.world_size)]
        out = np.zeros(4)
        col.reducescatter(out, ins, self.group)
        return out

    def ping_pong(self, n: int):
        x = np.zeros(n)
        if self.rank == 0:
            col.send(np.arange(n, dtype=np.float64), 1, self.group)
            col.recv(x, 1, self.group)
        else:
            col.recv(x, 0, self.group)
            col.send(x * 2, 0, self.group)
        return x

    def barrier(self):
        col.barrier(self.group)
        return True

    def destroy(self):
        col.destroy_collective_group(self.group)
        return col.get_rank(self.group), col.is_group_initialized(self.group)

    def sum_ones(self, group: str):
        x = np.ones(3)
        col.allreduce(x, group)
        return x

    def call(self, name: str, *args):
        return getattr(col, name)(*args)


def _group(name: str, n: int = 3, timeout_ms: int = 30000):
    return [Rank.remote(n, r, name, timeout_ms) for r in range(n)]


def _done(ranks, group):
    ember.get([r.destroy.remote() for r in ranks])
    for r in ranks:
        ember.kill(r)


def _expected_sum(n: int, world: int) -> np.ndarray:
    base = np.arange(n, dtype=np.float64) * 0.1
    out = base + 1
    for r in range(1, world):
        out = out + (base + r + 1)
    return out


@pytest.mark.parametrize("n", [7, BIG])
def test_allreduce_sums_every_rank_into_every_rank_alike(cluster, n):
    ranks = _group(f"sum{n}")
    try:
        got = ember.get([r.allreduce.remote(n) for r in ranks])
        np.testing.assert_allclose(got[0], _expected_sum(n, 3))
        assert all(np.array_equal(g, got[0]) for g in got)  # the same bits everywhere
    finally:
        _done(ranks, f"sum{n}")


def test_allreduce_ops_and_shapes(cluster):
    ranks = _group("ops")
    try:
        mx = ember.get([r.allreduce.remote(BIG, ReduceOp.MAX) for r in ranks])
        np.testing.assert_allclose(mx[1], np.arange(BIG) * 0.1 + 3)
        pr = ember.get([r.allreduce.remote(4, ReduceOp.PRODUCT) for r in ranks])
        base = np.arange(4) * 0.1
        np.testing.assert_allclose(pr[2], (base + 1) * (base + 2) * (base + 3))
        two_d = ember.get([r.allreduce_2d.remote() for r in ranks])
        assert two_d[0].shape == (3, 4)
        assert two_d[0].dtype == np.float32
        assert (two_d[0] == 6).all()
    finally:
        _done(ranks, "ops")


def test_broadcast_reduce_allgather_reducescatter(cluster):
    ranks = _group("many")
    try:
        for n in (3, BIG):
            out = ember.get([r.broadcast.remote(n, 2) for r in ranks])
            assert all((o == 2.0).all() for o in out)
        red = ember.get([r.reduce.remote(1) for r in ranks])
        assert (red[1] == 3.0).all()  # MAX of 1, 2, 3 on the destination
        assert (red[0] == 1.0).all()  # the others keep their own
        for n in (2, BIG):
            gathered = ember.get([r.allgather.remote(n) for r in ranks])
            for outs in gathered:
                assert [int(o[0]) for o in outs] == [0, 1, 2]
                assert all(len(o) == n for o in outs)
        rs = ember.get([r.reducescatter.remote() for r in ranks])
        # rank r gets sum over ranks k of (10 k + r)
        assert [float(o[0]) for o in rs] == [30.0 + 3 * r for r in range(3)]
        assert all(ember.get([r.barrier.remote() for r in ranks]))
    finally:
        _done(ranks, "many")


def test_send_and_recv_between_two_ranks(cluster):
    ranks = _group("p2p", n=2)
    try:
        for n in (5, BIG):
            a, b = ember.get([r.ping_pong.remote(n) for r in ranks])
            np.testing.assert_array_equal(b, np.arange(n))
            np.testing.assert_array_equal(a, np.arange(n) * 2)
    finally:
        _done(ranks, "p2p")


def test_a_group_declared_by_the_driver_is_joined_at_the_first_collective(cluster):
    ranks = [Rank.remote(2, r, "") for r in range(2)]
    for r in ranks:
        ember.get(r.info.remote())  # the actors are up (no group yet)
    col.create_collective_group(ranks, 2, [1, 0], backend="gloo", group_name="decl")
    with pytest.raises(RuntimeError, match="twice"):
        col.create_collective_group(ranks, 2, [0, 1], backend="gloo", group_name="decl")
    try:
        out = ember.get([r.sum_ones.remote("decl") for r in ranks])
        assert [o.tolist() for o in out] == [[2.0, 2.0, 2.0]] * 2
        infos = ember.get([r.call.remote("get_rank", "decl") for r in ranks])
        assert infos == [1, 0]  # the ranks the driver declared
    finally:
        ember.get([r.call.remote("destroy_collective_group", "decl") for r in ranks])
        for r in ranks:
            ember.kill(r)


def test_rank_and_size_and_leaving_a_group(cluster):
    ranks = _group("leave", n=2)
    assert ember.get([r.info.remote() for r in ranks]) == [(0, 2), (1, 2)]
    assert ember.get([r.destroy.remote() for r in ranks]) == [(-1, False), (-1, False)]

    def box_gone():
        try:
            ember.get_actor("info_leave")
        except ValueError:
            return True
        return False

    assert wait_until(box_gone, 30)  # the last rank out removed the mailbox
    for r in ranks:
        ember.kill(r)


def test_a_rank_that_never_joins_the_collective_times_out_with_a_clear_error(cluster):
    ranks = _group("late", n=2, timeout_ms=1000)
    try:
        with pytest.raises(TimeoutError, match=r"rank\(s\) \[1\] did not send"):
            ember.get(ranks[0].allreduce.remote(4))
    finally:
        ember.get([r.destroy.remote() for r in ranks])
        for r in ranks:
            ember.kill(r)


def test_bad_calls_fail_in_the_caller_with_clear_errors(cluster):
    with pytest.raises(RuntimeError, match="inside an ember actor or task"):
        col.init_collective_group(2, 0, backend="gloo", group_name="x")
    probe = Rank.remote(1, 0, "")
    try:
        with pytest.raises(RuntimeError, match="NCCL is not available"):
            ember.get(probe.call.remote("init_collective_group", 1, 0, "nccl", "g"))
        with pytest.raises(ValueError, match="rank must be in"):
            ember.get(probe.call.remote("init_collective_group", 2, 5, "gloo", "g"))
        with pytest.raises(RuntimeError, match="not initialized in the process"):
            ember.get(probe.call.remote("allreduce", np.ones(2), "nosuch"))
        with pytest.raises(RuntimeError, match="Unrecognized tensor type"):
            ember.get(probe.call.remote("allreduce", [1, 2], "nosuch"))
        assert ember.get(probe.call.remote("gloo_available")) is True
        assert ember.get(probe.call.remote("nccl_available")) is False
    finally:
        ember.kill(probe)


def test_data_parallel_gradient_descent_converges_like_one_process(cluster):
    """Two ranks each fit half the data; allreduced gradients give the full-batch fit."""

    @ember.remote(num_cpus=0)
    class Trainer:
        def __init__(self, rank):
            col.init_collective_group(2, rank, backend="gloo", group_name="sgd")
            rng = np.random.default_rng(0)
            x = rng.normal(size=(200, 3))
            y = x @ np.array([1.5, -2.0, 0.5]) + 0.3
            self.x, self.y = x[rank::2], y[rank::2]

        def fit(self, steps):
            w = np.zeros(4)
            for _ in range(steps):
                xb = np.hstack([self.x, np.ones((len(self.x), 1))])
                grad = 2 * xb.T @ (xb @ w - self.y) / 200
                col.allreduce(grad, "sgd")
                w -= 0.1 * grad
            col.destroy_collective_group("sgd")
            return w

    trainers = [Trainer.remote(r) for r in range(2)]
    w0, w1 = ember.get([t.fit.remote(300) for t in trainers])
    np.testing.assert_array_equal(w0, w1)
    np.testing.assert_allclose(w0, [1.5, -2.0, 0.5, 0.3], atol=1e-3)
    for t in trainers:
        ember.kill(t)
