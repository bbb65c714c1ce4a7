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
from ember.runtime.serialization import deserialize, dumps_plain, substitute_args
from ember.worker.calls import CallRunner, Item

logger = logging.getLogger(__name__)


class ActorHost:
    """Routes calls to the instance: main thread (ordered), a pool, or an event loop."""

    def __init__(
        self,
        runner: CallRunner,
        spec: ActorSpec,
        to_main: Callable[[Item], None],
    ) -> None:
        self.runner = runner
        self.spec = spec
        self._to_main = to_main
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.aloop: asyncio.AbstractEventLoop | None = None
        self.sem: asyncio.Semaphore | None = None
        #: async actors: calls not started yet (in arrival order), and whether
        #: the actor loop has a ``_start_next`` scheduled
        self._incoming: collections.deque[Item] = collections.deque()
        self._pumping = False
        self._lock = threading.Lock()
        if spec.is_async:
            self.aloop = asyncio.new_event_loop()
            t = threading.Thread(
                target=self.aloop.run_forever, name="actor-loop", daemon=True
            )
            t.start()
            self.sem = asyncio.Semaphore(spec.max_concurrency)
        elif spec.max_concurrency > 1:
            self.pool = concurrent.futures.ThreadPoolExecutor(
                spec.max_concurrency, thread_name_prefix="actor"
            )

    def dispatch(self, item: Item) -> None:
        """Loop thread: hand a call to where this actor runs its calls."""
        if self.aloop is not None:
            with self._lock:
                self._incoming.append(item)
                if self._pumping:
                    return
                self._pumping = True
            self.aloop.call_soon_threadsafe(self._start_next)
        elif self.pool is not None:
            self.pool.submit(self.runner.run, item)
        else:
            self._to_main(item)

    def _start_next(self) -> None:
        """Actor loop: start one queued call, then let the loop run a round.

        Starting one call per round (this callback requeues itself behind what
        the started call's first step wakes) means a coroutine woken by an
        ``asyncio.Event`` resumes before the next queued call starts, as on
        Ray's actor loop; starting them all at once would run every queued call
        first, and a batching program would see the next batch's state.
        """
        assert self.aloop is not None
        with self._lock:
            item = self._incoming.popleft()
            more = bool(self._incoming)
            self._pumping = more
        self.aloop.create_task(self._run_async(item))
        if more:
            self.aloop.call_soon(self._start_next)

    async def _run_async(self, item: Item) -> None:
        assert self.sem is not None
        async with self.sem:
            method = getattr(self.runner.instance, item[0].method, None)
            if method is not None and (
                inspect.iscoroutinefunction(method)
                or inspect.isasyncgenfunction(method)
            ):
                await self.runner.run_async(item, method)
            else:  # a plain method of an async actor runs on its loop
                self.runner.run(item)  # (a missing one fails there, with a reply)

    def close(self) -> None:
        """Stop the event loop or the pool (the instance could not be built)."""
        if self.aloop is not None:
            self.aloop.call_soon_threadsafe(self.aloop.stop)
        if self.pool is not None:
            self.pool.shutdown(wait=False)


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
            ok=False, error=dumps_plain(err), error_text=str(err)
        )
    finally:
        task_context.set_current(None)
    try:
        task_context.process_actor["repr"] = repr(instance)
    except Exception:  # noqa: BLE001  (user code or user values)
        task_context.process_actor["repr"] = spec.class_name
    runner.instance = instance
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
