"""The GLOO backend of ember: collectives over the object store and a group mailbox.

Theory of operation.  Ranks meet at the group's mailbox actor
(:mod:`ember.util.collective.mailbox`).  A rank sends a value to another by
posting it there under ``(kind, seq, src, dst)``; the receiver picks it up
with one ``fetch`` for all the keys it needs.  Arrays of
``INLINE_MAX_BYTES`` or more travel through the object store (the box passes
only their ref, so the bytes go from the sender's node straight to the
receiver's, shared memory on one node), smaller ones inline in the post.

``allreduce`` of a large array is a reduce-scatter then an all-gather: each
rank owns one of ``world_size`` chunks, receives that chunk from every other
rank, reduces it, and sends the result back, so each rank sends and receives
``2 (W - 1) / W`` of the array (the optimum a ring reaches) in two rounds,
not ``2 (W - 1)``.  Small arrays go in one round (every rank sends all of it
to all).  Values are always combined in rank order, so every rank gets
bit-for-bit the same result.

A sender keeps its object refs for two operations after posting: a rank that
starts operation ``k + 2`` has received everything for ``k + 1``, which the
others send only after finishing ``k``, so by then every receiver holds the
refs of ``k`` itself.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import ember
from ember.util.collective import mailbox
from ember.util.collective.collective_group.base_collective_group import BaseGroup
from ember.util.collective.types import (
    AllGatherOptions,
    AllReduceOptions,
    Backend,
    BarrierOptions,
    BroadcastOptions,
    RecvOptions,
    ReduceOp,
    ReduceOptions,
    ReduceScatterOptions,
    SendOptions,
)

#: arrays this size or larger travel through the object store, smaller inline
INLINE_MAX_BYTES = 64 * 1024

_UFUNCS: dict[ReduceOp, Callable[..., Any]] = {
    ReduceOp.SUM: np.add,
    ReduceOp.PRODUCT: np.multiply,
    ReduceOp.MIN: np.minimum,
    ReduceOp.MAX: np.maximum,
}


def as_array(tensor: Any) -> np.ndarray:
    """The numpy view of a supported tensor (a numpy array, or a CPU torch tensor)."""
    if isinstance(tensor, np.ndarray):
        return tensor
    numpy = getattr(tensor, "numpy", None)
    if callable(numpy) and type(tensor).__module__.startswith("torch"):
        if getattr(tensor, "is_cuda", False):
            raise RuntimeError(
                "ember's GLOO backend takes CPU tensors: move it with .cpu() first"
            )
        return numpy()
    raise RuntimeError(
        f"Unrecognized tensor type {type(tensor)!r}. Supported types are: "
        "np.ndarray, torch.Tensor (CPU)."
    )


class StoreGroup(BaseGroup):
    """One rank's view of a group whose data moves through ember's object store."""

    def __init__(
        self,
        world_size: int,
        rank: int,
        group_name: str,
        gloo_timeout: int | None = 30000,
        rendezvous: str | None = None,
    ) -> None:
        super().__init__(world_size, rank, group_name)
        self._timeout_s = (gloo_timeout or 30000) / 1000
        self._box = mailbox.get_or_create(rendezvous or group_name)
        self._seq = 0
        self._sent_to: dict[int, int] = {}
        self._received_from: dict[int, int] = {}
        self._keep: deque[list[Any]] = deque(maxlen=2)
        ember.get(self._box.join.remote(rank, world_size), timeout=self._timeout_s)

    @classmethod
    def backend(cls) -> str:
        return Backend.GLOO

    @classmethod
    def check_backend_availability(cls) -> bool:
        return True

    def destroy_group(self) -> None:
        """Leave the group; the last to leave removes its mailbox."""
        self._keep.clear()
        try:
            left = ember.get(self._box.leave.remote(self.rank), timeout=self._timeout_s)
        except Exception:  # the box is already gone: nothing to clean  # noqa: BLE001
            return
        if left == 0:
            ember.kill(self._box)

    # -- moving values ---------------------------------------------------------

    def _others(self) -> list[int]:
        return [r for r in range(self.world_size) if r != self.rank]

    def _pack(self, arr: np.ndarray, refs: list[Any]) -> Any:
        if arr.nbytes < INLINE_MAX_BYTES:
            return np.ascontiguousarray(arr).copy()
        ref = ember.put(np.ascontiguousarray(arr))
        refs.append(ref)
        return [ref]

    def _post(self, items: list[tuple[mailbox.Key, Any]]) -> None:
        if items:
            self._box.post.remote(items)

    def _fetch(self, keys: list[mailbox.Key], what: str) -> list[np.ndarray]:
        if not keys:
            return []
        ok, got = ember.get(
            self._box.fetch.remote(keys, self._timeout_s),
            timeout=self._timeout_s + 30,
        )
        if not ok:
            missing = sorted({k[2] for k in got})
            raise TimeoutError(
                f"collective {what} in group {self.group_name!r}: rank(s) {missing} "
                f"did not send within {self._timeout_s:g} s (gloo_timeout); every "
                "rank must call the same collectives in the same order"
            )
        refs = [v[0] for v in got if isinstance(v, list)]
        fetched = iter(ember.get(refs, timeout=self._timeout_s) if refs else [])
        return [next(fetched) if isinstance(v, list) else v for v in got]

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # -- the operations --------------------------------------------------------

    def allreduce(self, tensors: list[Any], opts: AllReduceOptions) -> None:
        arr = as_array(tensors[0])
        if self.world_size == 1:
            return
        flat = arr.reshape(-1)  # a view if it can be, else written back below
        ufunc = _UFUNCS[opts.reduceOp]
        if arr.nbytes < INLINE_MAX_BYTES * self.world_size:
            values = self._exchange_all(flat, "allreduce")
            out = _combine(values, ufunc)
        else:
            out = self._reduce_scatter_gather(flat, ufunc)
        _write(arr, out)

    def _exchange_all(self, flat: np.ndarray, what: str) -> list[np.ndarray]:
        """Every rank's ``flat``, in rank order (one round)."""
        seq, me = self._next_seq(), self.rank
        refs: list[Any] = []
        value = self._pack(flat, refs)
        self._post([(("c", seq, me, dst), value) for dst in self._others()])
        self._keep.append(refs)
        got = iter(self._fetch([("c", seq, src, me) for src in self._others()], what))
        return [flat if r == me else next(got) for r in range(self.world_size)]

    def _reduce_scatter_gather(
        self, flat: np.ndarray, ufunc: Callable[..., Any]
    ) -> np.ndarray:
        w, me = self.world_size, self.rank
        bounds = np.linspace(0, flat.size, w + 1).astype(int)
        chunk = [flat[bounds[r] : bounds[r + 1]] for r in range(w)]
        seq = self._next_seq()
        refs: list[Any] = []
        self._post(
            [
                (("c", seq, me, dst), self._pack(chunk[dst], refs))
                for dst in self._others()
            ]
        )
        got = iter(
            self._fetch([("c", seq, src, me) for src in self._others()], "allreduce")
        )
        mine = _combine([chunk[me] if r == me else next(got) for r in range(w)], ufunc)
        seq2 = self._next_seq()
        value = self._pack(mine, refs)
        self._post([(("c", seq2, me, dst), value) for dst in self._others()])
        self._keep.append(refs)
        parts = iter(
            self._fetch([("c", seq2, src, me) for src in self._others()], "allreduce")
        )
        out = np.empty_like(flat)
        for r in range(w):
            out[bounds[r] : bounds[r + 1]] = mine if r == me else next(parts)
        return out

    def barrier(self, opts: BarrierOptions) -> None:
        if self.world_size > 1:
            self._exchange_all(np.zeros(1, dtype=np.uint8), "barrier")

    def reduce(self, tensors: list[Any], opts: ReduceOptions) -> None:
        arr, me, root = as_array(tensors[0]), self.rank, opts.root_rank
        seq = self._next_seq()
        refs: list[Any] = []
        if me != root:
            self._post([(("c", seq, me, root), self._pack(arr.reshape(-1), refs))])
            self._keep.append(refs)
            return
        got = iter(
            self._fetch([("c", seq, src, me) for src in self._others()], "reduce")
        )
        flat = arr.reshape(-1)
        values = [flat if r == me else next(got) for r in range(self.world_size)]
        _write(arr, _combine(values, _UFUNCS[opts.reduceOp]))

    def broadcast(self, tensors: list[Any], opts: BroadcastOptions) -> None:
        arr, me, root = as_array(tensors[0]), self.rank, opts.root_rank
        seq = self._next_seq()
        refs: list[Any] = []
        if me == root:
            value = self._pack(arr.reshape(-1), refs)
            self._post([(("c", seq, me, dst), value) for dst in self._others()])
            self._keep.append(refs)
            return
        (got,) = self._fetch([("c", seq, root, me)], "broadcast")
        _write(arr, got)

    def allgather(
        self, tensor_lists: list[list[Any]], tensors: list[Any], opts: AllGatherOptions
    ) -> None:
        flat = as_array(tensors[0]).reshape(-1)
        values = self._exchange_all(flat, "allgather")
        for out, value in zip(tensor_lists[0], values, strict=True):
            _write(as_array(out), value)

    def reducescatter(
        self,
        tensors: list[Any],
        tensor_lists: list[list[Any]],
        opts: ReduceScatterOptions,
    ) -> None:
        me, inputs = self.rank, [as_array(t).reshape(-1) for t in tensor_lists[0]]
        seq = self._next_seq()
        refs: list[Any] = []
        self._post(
            [
                (("c", seq, me, dst), self._pack(inputs[dst], refs))
                for dst in self._others()
            ]
        )
        self._keep.append(refs)
        got = iter(
            self._fetch(
                [("c", seq, src, me) for src in self._others()], "reducescatter"
            )
        )
        values = [inputs[me] if r == me else next(got) for r in range(self.world_size)]
        _write(as_array(tensors[0]), _combine(values, _UFUNCS[opts.reduceOp]))

    def send(self, tensors: list[Any], opts: SendOptions) -> None:
        dst = opts.dst_rank
        n = self._sent_to[dst] = self._sent_to.get(dst, 0) + 1
        refs: list[Any] = []
        value = self._pack(as_array(tensors[0]).reshape(-1), refs)
        # wait for the box to hold it: then the refs may go (the box borrows them)
        ember.get(self._box.post.remote([(("p", n, self.rank, dst), value)]))

    def recv(self, tensors: list[Any], opts: RecvOptions) -> None:
        src = opts.src_rank
        n = self._received_from[src] = self._received_from.get(src, 0) + 1
        (got,) = self._fetch([("p", n, src, self.rank)], "recv")
        _write(as_array(tensors[0]), got)


def _combine(values: Sequence[np.ndarray], ufunc: Callable[..., Any]) -> np.ndarray:
    """``values`` combined in rank order (the same bits on every rank)."""
    out = np.array(values[0], copy=True)
    for v in values[1:]:
        ufunc(out, v, out=out)
    return out


def _write(arr: np.ndarray, values: np.ndarray) -> None:
    """Write ``values`` (flat) into ``arr`` in place."""
    if values.size != arr.size:
        raise RuntimeError(
            f"the tensor has {arr.size} elements but the group sent {values.size}: "
            "every rank must pass tensors of the same shape"
        )
    arr[...] = values.reshape(arr.shape)
