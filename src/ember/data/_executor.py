"""The streaming executor: runs a plan's stages as ember tasks and actor pools, block by block."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

import ember
from ember.data._budget import Budget, StageLoad
from ember.data._plan import AllToAllOp, Plan, Source, Stage, fuse
from ember.data._progress import ProgressBars
from ember.data._stats import StageStats
from ember.data._workers import MapWorker, block_metadata, slice_block, stage_task
from ember.data.block import BlockMetadata, metadata_of
from ember.data.context import DataContext

logger = logging.getLogger("ember.data")

#: tasks an actor of a pool may have queued at once
_TASKS_PER_ACTOR = 2
#: retries of a stage task whose worker died (Ray Data retries system failures too)
_DEFAULT_MAX_RETRIES = 3

RefMeta = tuple[Any, BlockMetadata]


@dataclass
class _Pending:
    index: int
    block_ref: Any
    actor: Any = None
    input_bytes: int = 0


@dataclass
class _StageRun:
    stage: Stage
    load: StageLoad
    stats: StageStats
    inputs: deque[tuple[int, Any]] = field(default_factory=deque)
    pending: dict[Any, _Pending] = field(default_factory=dict)
    outputs: dict[int, RefMeta] = field(default_factory=dict)
    next_out: int = 0
    actors: list[Any] = field(default_factory=list)
    actor_load: dict[int, int] = field(default_factory=dict)
    rows_seen: int = 0
    closed: bool = False


def _has_columns(meta: BlockMetadata) -> bool:
    return meta.schema is not None and len(meta.schema.names) > 0


def _cluster_cpus() -> int:
    return max(1, int(ember.cluster_resources().get("CPU", 1)))


def _budget_bytes(ctx: DataContext) -> int:
    limit = ctx.execution_options.resource_limits.object_store_memory
    if limit:
        return int(limit)
    store = ember.cluster_resources().get("object_store_memory", 2 * 1024**3)
    return int(store * ctx.object_store_memory_fraction)


def _task_cap(stage: Stage, ctx: DataContext) -> int:
    if stage.pool is not None:
        return stage.pool.max_size * _TASKS_PER_ACTOR
    cpus = ctx.execution_options.resource_limits.cpu or _cluster_cpus()
    per_task = stage.remote_args.get("num_cpus", 1) or 0
    cap = max(1, int(cpus // per_task)) if per_task else max(1, int(cpus) * 2)
    size = stage.task_pool_size
    return min(cap, size) if size else cap


class StreamingExecutor:
    """Executes stages over a source, yielding output blocks in input order.

    A generator: ``run()`` launches work as the budget allows, waits for any task to
    finish, passes finished blocks downstream and yields the last stage's blocks. The
    consumer pulls; while it holds a block, only the tasks already started keep running.
    """

    def __init__(
        self, source: Source, stages: list[Stage], ctx: DataContext, label: str
    ) -> None:
        self._source = source
        self._ctx = ctx
        self._label = label
        runs: list[_StageRun] = []
        for stage in stages:
            cap = _task_cap(stage, ctx) if stage.limit is None else 1
            runs.append(_StageRun(stage, StageLoad(cap=cap), StageStats(stage.name)))
        self._runs = runs
        self._budget = Budget(_budget_bytes(ctx), [r.load for r in runs])
        self._bars = ProgressBars([s.name for s in stages], source.num_inputs(), ctx)
        self.stats = [r.stats for r in runs]
        self.wall_s = 0.0
        #: blocks whose task failed and were skipped (DataContext.max_errored_blocks)
        self._errored = 0

    def run(self) -> Iterator[RefMeta]:
        start = time.perf_counter()
        try:
            if not self._runs:
                yield from self._source_items()
                return
            first = self._runs[0]
            for i, item in enumerate(self._source_inputs()):
                first.inputs.append((i, item))
            first.load.queued = len(first.inputs)
            yield from self._loop()
        finally:
            self._shutdown()
            self.wall_s = time.perf_counter() - start

    def _source_items(self) -> Iterator[RefMeta]:
        src = self._source
        refs = src.refs or ()
        metas = src.metadata or tuple(
            ember.get([block_metadata.remote(r) for r in refs])
        )
        yield from zip(refs, metas, strict=True)

    def _source_inputs(self) -> list[Any]:
        src = self._source
        if src.refs is not None:
            metas = src.metadata or (None,) * len(src.refs)
            return [(r, m) for r, m in zip(src.refs, metas, strict=True)]
        return list(src.read_tasks or ())

    def _loop(self) -> Iterator[RefMeta]:
        runs = self._runs
        while True:
            final = self._advance()
            yield from final
            for k in range(len(runs) - 1, -1, -1):
                while self._budget.can_launch(k):
                    self._launch(k)
            waiting = {ref: run for run in runs for ref in run.pending}
            if not waiting:
                stuck = [k for k, r in enumerate(runs) if r.inputs]
                if not stuck:
                    return
                self._launch(
                    stuck[-1]
                )  # never wait on nothing: start the most downstream work
                continue
            ready, _ = ember.wait(list(waiting), num_returns=1)
            for ref in ready:
                self._complete(waiting[ref], ref)

    def _advance(self) -> list[RefMeta]:
        """Pass finished blocks downstream in order; return those leaving the last stage."""
        final: list[RefMeta] = []
        for k, run in enumerate(self._runs):
            while run.next_out in run.outputs:
                idx = run.next_out
                item = run.outputs.pop(idx)
                run.next_out += 1
                run.load.held_bytes -= item[1].size_bytes
                if k + 1 < len(self._runs):
                    self._accept(k + 1, idx, item)
                else:
                    final.append(item)
        return final

    def _accept(self, k: int, idx: int, item: RefMeta) -> None:
        run = self._runs[k]
        if run.closed:
            return
        if (
            run.stage.limit is None
            and item[1].num_rows == 0
            and not _has_columns(item[1])
        ):
            run.outputs[idx] = item  # a skipped (errored) block: nothing to process
            return
        if run.stage.limit is None:
            run.inputs.append((idx, item))
            run.load.queued += 1
            run.load.held_bytes += item[1].size_bytes
            return
        # a limit stage: pass blocks through until the limit, slice the last one
        remaining = run.stage.limit - run.rows_seen
        ref, meta = item
        if meta.num_rows > remaining:
            ref, meta_ref = slice_block.remote(ref, 0, remaining)
            meta = ember.get(meta_ref)
        run.rows_seen += meta.num_rows
        run.outputs[idx] = (ref, meta)
        run.load.held_bytes += meta.size_bytes
        run.stats.record(meta)
        if run.rows_seen >= run.stage.limit:
            run.closed = True
            self._close_upstream(k)

    def _close_upstream(self, k: int) -> None:
        for run in self._runs[:k]:
            run.closed = True
            run.inputs.clear()
            run.load.queued = 0
            run.pending.clear()
            run.load.in_flight = 0
            run.outputs.clear()
            run.load.held_bytes = 0

    def _launch(self, k: int) -> None:
        run = self._runs[k]
        idx, item = run.inputs.popleft()
        run.load.queued -= 1
        stage = run.stage
        in_bytes = 0
        if (
            stage.read_name is not None
            and k == 0
            and self._source.read_tasks is not None
        ):
            block_ref, meta_ref = self._task(stage).remote(stage.ops, item, None)
        else:
            ref, meta = item
            in_bytes = meta.size_bytes if meta is not None else 0
            if stage.pool is not None:
                actor = self._pick_actor(run)
                block_ref, meta_ref = actor.process.remote(ref)
                run.pending[meta_ref] = _Pending(idx, block_ref, actor, in_bytes)
                run.load.in_flight += 1
                return
            block_ref, meta_ref = self._task(stage).remote(stage.ops, None, ref)
        run.pending[meta_ref] = _Pending(idx, block_ref, None, in_bytes)
        run.load.in_flight += 1

    def _task(self, stage: Stage) -> Any:
        args = dict(stage.remote_args)
        args.setdefault("max_retries", _DEFAULT_MAX_RETRIES)
        args.setdefault("name", stage.name)
        return stage_task.options(**args)

    def _pick_actor(self, run: _StageRun) -> Any:
        pool = run.stage.pool
        assert pool is not None
        if not run.actors:
            for _ in range(pool.min_size):
                self._add_actor(run)
        least = min(range(len(run.actors)), key=lambda i: run.actor_load[i])
        if run.actor_load[least] >= 1 and len(run.actors) < pool.max_size:
            least = self._add_actor(run)
        run.actor_load[least] += 1
        return run.actors[least]

    def _add_actor(self, run: _StageRun) -> int:
        args = {k: v for k, v in run.stage.remote_args.items() if k != "max_retries"}
        args.setdefault("max_restarts", _DEFAULT_MAX_RETRIES)
        args.setdefault("max_task_retries", _DEFAULT_MAX_RETRIES)
        actor = ember.remote(MapWorker).options(**args).remote(run.stage.ops)
        run.actors.append(actor)
        run.actor_load[len(run.actors) - 1] = 0
        return len(run.actors) - 1

    def _complete(self, run: _StageRun, meta_ref: Any) -> None:
        pending = run.pending.pop(meta_ref)
        run.load.in_flight -= 1
        if pending.actor is not None:
            i = run.actors.index(pending.actor)
            run.actor_load[i] -= 1
        block_ref = pending.block_ref
        try:
            meta: BlockMetadata = ember.get(meta_ref)
        except Exception as exc:
            allowed = self._ctx.max_errored_blocks
            if allowed >= 0 and self._errored >= allowed:
                logger.error(
                    'An exception was raised from a task of operator "%s". Dataset '
                    "execution will now abort. To ignore this exception and continue, set "
                    "DataContext.max_errored_blocks.",
                    run.stage.name,
                )
                raise
            self._errored += 1
            logger.warning(
                'Skipping a block that failed in operator "%s" (%d errored blocks so far, '
                "DataContext.max_errored_blocks=%d): %s",
                run.stage.name,
                self._errored,
                allowed,
                exc,
            )
            empty = pa.table({})
            block_ref, meta = ember.put(empty), metadata_of(empty)
        run.outputs[pending.index] = (block_ref, meta)
        run.load.held_bytes += meta.size_bytes
        run.load.est_block_bytes = max(run.load.est_block_bytes, meta.size_bytes)
        run.stats.record(meta)
        self._bars.update(self._runs.index(run))
        if pending.input_bytes and run is not self._runs[0]:
            self._runs_input_done(run, pending.input_bytes)

    def _runs_input_done(self, run: _StageRun, nbytes: int) -> None:
        run.load.held_bytes -= nbytes

    def _shutdown(self) -> None:
        self._bars.close()
        for run in self._runs:
            for actor in run.actors:
                ember.kill(actor)
            run.actors.clear()
            run.pending.clear()


def execute(
    plan: Plan, ctx: DataContext | None = None, label: str = "dataset"
) -> tuple[Iterator[RefMeta], list[StreamingExecutor]]:
    """Run a plan; barriers (all-to-all ops) materialize what comes before them."""
    ctx = ctx or DataContext.get_current()
    source = plan.source
    ops = list(plan.ops)
    executors: list[StreamingExecutor] = []
    b = plan.last_barrier()
    if b >= 0:
        barrier = ops[b]
        assert isinstance(barrier, AllToAllOp)
        upstream, upstream_execs = execute(Plan(source, tuple(ops[:b])), ctx, label)
        refs = [ref for ref, _ in upstream]
        executors.extend(upstream_execs)
        out_refs = list(barrier.fn(refs))
        metas = tuple(ember.get([block_metadata.remote(r) for r in out_refs]))
        source = Source(barrier.name, refs=tuple(out_refs), metadata=metas)
        ops = ops[b + 1 :]
    reads = source.read_tasks is not None
    stages = fuse(source.name, reads, ops)
    ex = StreamingExecutor(source, stages, ctx, label)
    executors.append(ex)
    return ex.run(), executors
