"""The actor instance of this worker: creation, and sync/threaded/async calls."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

from ember.protocol.messages import ActorSpec, CreateActorOnWorkerReply, TaskSpec
from ember.runtime import task_context
from ember.runtime.object_ref import ObjectRef
from ember.runtime.serialization import deserialize, error_bytes, substitute_args
from ember.worker import proctitle
from ember.worker.calls import CallRunner, Item

logger = logging.getLogger(__name__)


class AsyncLane:
    """One event loop (on its own thread) running an async actor's calls of one
    concurrency group, at most ``limit`` at a time."""

    def __init__(self, runner: CallRunner, limit: int, name: str) -> None:
        self.runner = runner
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name=name, daemon=True).start()
        self.sem = asyncio.Semaphore(limit)
        #: calls not started yet (in arrival order), and whether the loop has a
        #: ``_start_next`` scheduled
        self._incoming: collections.deque[Item] = collections.deque()
        self._pumping = False
        self._lock = threading.Lock()

    def dispatch(self, item: Item) -> None:
        """Any thread: queue a call for this loop."""
        with self._lock:
            self._incoming.append(item)
            if self._pumping:
                return
            self._pumping = True
        self.loop.call_soon_threadsafe(self._start_next)

    def _start_next(self) -> None:
        """This loop: start one queued call, then let the loop run a round.

        Starting one call per round (this callback requeues itself behind what
        the started call's first step wakes) means a coroutine woken by an
        ``asyncio.Event`` resumes before the next queued call starts, as on
        Ray's actor loop; starting them all at once would run every queued call
        first, and a batching program would see the next batch's state.
        """
        with self._lock:
            item = self._incoming.popleft()
            more = bool(self._incoming)
            self._pumping = more
        self.loop.create_task(self._run(item))
        if more:
            self.loop.call_soon(self._start_next)

    async def _run(self, item: Item) -> None:
        runner = self.runner
        spec, _, reply, conn = item
        task = asyncio.current_task()
        assert task is not None
        # registered before it waits for a slot, so a cancel reaches it there too
        if not runner.cancels.begin(spec.task_id, task, self.loop):
            runner.send_reply(reply, conn, runner.cancelled_before_start(spec, conn))
            runner.cancels.end(spec.task_id)
            return
        try:
            async with self.sem:
                method = getattr(runner.instance, spec.method, None)
                if method is not None and (
                    inspect.iscoroutinefunction(method)
                    or inspect.isasyncgenfunction(method)
                ):
                    await runner.run_async(item, method)
                else:  # a plain method of an async actor runs on its loop
                    runner.run(item)  # (a missing one fails there, with a reply)
        except asyncio.CancelledError:  # cancelled while waiting for its slot
            runner.send_reply(reply, conn, runner.cancelled_before_start(spec, conn))
        finally:
            runner.cancels.end(spec.task_id)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


class ActorHost:
    """Routes calls to the instance: main thread (ordered), pools, or event loops.

    Each concurrency group (``concurrency_groups={"io": 2}``, chosen per method
    with ``@method(concurrency_group=...)`` or per call with ``.options``) has
    its own event loop (async actors) or thread pool (others) and limit; the
    default group ``""`` has ``max_concurrency`` (on the main thread when 1).
    """

    def __init__(
        self,
        runner: CallRunner,
        spec: ActorSpec,
        to_main: Callable[[Item], None],
    ) -> None:
        self.runner = runner
        self.spec = spec
        self._to_main = to_main
        self.lanes: dict[str, AsyncLane] = {}
        self.pools: dict[str, concurrent.futures.ThreadPoolExecutor] = {}
        self.aloop: asyncio.AbstractEventLoop | None = None
        groups = dict(spec.concurrency_groups)
        if spec.is_async:
            self.lanes[""] = AsyncLane(runner, spec.max_concurrency, "actor-loop")
            for group, limit in groups.items():
                self.lanes[group] = AsyncLane(runner, limit, f"actor-loop-{group}")
            self.aloop = self.lanes[""].loop
            return
        if spec.max_concurrency > 1:
            groups[""] = spec.max_concurrency
        for group, limit in groups.items():
            self.pools[group] = concurrent.futures.ThreadPoolExecutor(
                limit, thread_name_prefix=f"actor-{group}" if group else "actor"
            )

    def unknown_group(self, spec: TaskSpec) -> str | None:
        """Loop thread: why a call's concurrency group is refused, or None.

        A group the actor does not define (``.options(concurrency_group=...)``)
        fails that call; Ray 2.60 crashes the actor's process there instead.
        """
        group = spec.concurrency_group
        if not group or group in self.lanes or group in self.pools:
            return None
        defined = ", ".join(repr(g) for g in sorted(self.spec.concurrency_groups))
        return (
            f"The actor {self.spec.class_name} has no concurrency group {group!r} "
            f"(it defines: {defined or 'none'}); the call {spec.name!r} was not run."
        )

    def dispatch(self, item: Item) -> None:
        """Loop thread: hand a call to where its concurrency group runs calls."""
        self.runner.cancels.queued(item[0].task_id)
        group = item[0].concurrency_group
        if self.lanes:
            (self.lanes.get(group) or self.lanes[""]).dispatch(item)
            return
        pool = self.pools.get(group) or self.pools.get("")
        if pool is not None:
            pool.submit(self.runner.run, item)
        else:
            self._to_main(item)

    def close(self) -> None:
        """Stop the event loops and pools (the instance could not be built)."""
        for lane in self.lanes.values():
            lane.close()
        for pool in self.pools.values():
            pool.shutdown(wait=False)


def create_actor(
    runner: CallRunner,
    spec: ActorSpec,
    epoch: int,
    aloop: asyncio.AbstractEventLoop | None = None,
) -> CreateActorOnWorkerReply:
    """Main thread: instantiate the actor class; the reply for the control service.

    ``epoch`` counts the actor's starts: above 1, this is a restart. An
    ``async def __init__`` runs on ``aloop`` (the async actor's event loop, where
    its methods will run too), or on a loop of its own.
    """
    task_context.process_actor.update(
        restarted=epoch > 1,
        class_name=spec.class_name,
        actor_id=spec.actor_id,
        resources=dict(spec.resources),
        # what its calls run in (their runtime_context; inherited by their tasks)
        runtime_env={**spec.runtime_env, "env_vars": dict(spec.env_vars)},
        name=spec.name,
        placement_group=spec.scheduling
        if spec.scheduling.get("type") == "placement_group"
        else None,
    )
    init = TaskSpec(
        task_id=spec.actor_id,
        job_id=spec.job_id,
        name=f"{spec.class_name}.__init__",
        actor_id=spec.actor_id,
    )
    task_context.set_current(runner.context_for(init))
    try:
        cls = runner.functions.load_function(spec.job_id, spec.class_key)
        a, k = deserialize(spec.args, [memoryview(b) for b in spec.arg_bufs])
        if spec.ref_args:
            refs = [ObjectRef(r.oid, r.owner) for r in spec.ref_args]
            values = runner.cw.objects.get(refs, None)
            a, k = substitute_args(a, k, values)
        instance = _construct(cls, a, k, aloop, task_context.get())
    except Exception as exc:  # noqa: BLE001  (user code or user values)
        err = runner.packer.task_error(init, exc)
        return CreateActorOnWorkerReply(
            ok=False, error=error_bytes(err), error_text=str(err)
        )
    finally:
        task_context.set_current(None)
    try:
        task_context.process_actor["repr"] = repr(instance)
    except Exception:  # noqa: BLE001  (user code or user values)
        task_context.process_actor["repr"] = spec.class_name
    runner.instance = instance
    # for get_runtime_context().current_actor and get_task_function_name()
    task_context.process_actor["class"] = cls
    task_context.process_actor["max_task_retries"] = spec.max_task_retries
    task_context.process_actor["is_async"] = spec.is_async  # is_canceled() refuses
    proctitle.became_actor(spec.class_name)
    return CreateActorOnWorkerReply(ok=True)


def _construct(
    cls: Any,
    args: Any,
    kwargs: dict[str, Any],
    aloop: asyncio.AbstractEventLoop | None,
    ctx: task_context.TaskContext | None,
) -> Any:
    """``cls(*args, **kwargs)``, awaiting an ``async def __init__``."""
    if not inspect.iscoroutinefunction(getattr(cls, "__init__", None)):
        return cls(*args, **kwargs)
    instance = cls.__new__(cls)

    async def init() -> None:
        task_context.set_current(ctx)  # the loop's thread has its own context
        try:
            await instance.__init__(*args, **kwargs)
        finally:
            task_context.set_current(None)

    if aloop is None:
        asyncio.run(init())
    else:
        asyncio.run_coroutine_threadsafe(init(), aloop).result()
    return instance
