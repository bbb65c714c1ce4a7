"""The actor instance of this worker: creation, and sync/threaded/async calls."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
from typing import TYPE_CHECKING, Any

from ember.protocol.messages import ActorSpec
from ember.runtime import task_context
from ember.runtime.object_ref import ObjectRef
from ember.runtime.serialization import deserialize, substitute_args

if TYPE_CHECKING:
    from ember.worker.executor import Executor

logger = logging.getLogger(__name__)


class ActorHost:
    """Routes calls to the instance: main thread (ordered), a pool, or an event loop."""

    def __init__(self, executor: Executor, spec: ActorSpec, instance: Any) -> None:
        self.executor = executor
        self.spec = spec
        self.instance = instance
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.aloop: asyncio.AbstractEventLoop | None = None
        self.sem: asyncio.Semaphore | None = None
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

    def dispatch(self, item: Any) -> None:
        if self.aloop is not None:
            asyncio.run_coroutine_threadsafe(self._run_async(item), self.aloop)
        elif self.pool is not None:
            self.pool.submit(self.executor.run_item, item)
        else:
            self.executor.main_q.put(item)

    async def _run_async(self, item: Any) -> None:
        spec, bufs, fut, conn = item
        ex = self.executor
        assert self.sem is not None
        async with self.sem:
            if ex.exit_code is not None:  # exit_actor() ran meanwhile: refuse the call
                from ember.protocol.messages import TaskReply

                reply_ = TaskReply(
                    error="the actor has exited (exit_actor() was called)"
                )
                ex.send_reply(fut, conn, (reply_, []))
                return
            method = getattr(self.instance, spec.method)
            if not inspect.iscoroutinefunction(method):
                ex.run_item(item)
                return
            task_context.set_current(ex.context_for(spec))
            ex._tl.conn = conn
            try:
                if spec.args_ref is None and (
                    not spec.ref_args
                    or (
                        len(spec.inlined) == len(spec.ref_args)
                        and min(spec.inlined) >= 0
                    )
                ):
                    # every argument is in the push: unpickle here, no thread hop
                    args, kwargs = ex.load_args(spec, bufs)
                else:  # fetching may block: not on the actor's event loop
                    args, kwargs = await asyncio.to_thread(ex.load_args, spec, bufs)
                try:
                    result = await method(*args, **kwargs)
                    reply = ex.pack_returns(spec, result)
                except asyncio.CancelledError:
                    from ember import exceptions as exc_mod

                    reply = ex.pack_error(
                        spec,
                        ex.task_error(
                            spec, exc_mod.TaskCancelledError(spec.task_id.hex())
                        ),
                    )
                except SystemExit:
                    ex.exit_code = 0
                    reply = ex.pack_error(spec, ex.exit_error(spec))
                    reply[0].exit_worker = True
                    ex.main_q.put(None)
                except Exception as exc:  # noqa: BLE001  (user code or user values)
                    reply = ex.pack_error(
                        spec, ex.task_error(spec, exc), ex.retryable(spec, exc)
                    )
            except Exception as exc:  # noqa: BLE001  (user code or user values)
                reply = ex.pack_error(spec, ex.task_error(spec, exc))
            finally:
                task_context.set_current(None)
        ex.send_reply(fut, conn, reply)


def create_actor(ex: Executor, spec: ActorSpec, fut: asyncio.Future[Any]) -> None:
    """Main thread: instantiate the actor class and install the host."""
    from ember.protocol.messages import TaskSpec
    from ember.worker.executor import _resolve

    task_context.process_actor.update(
        class_name=spec.class_name,
        actor_id=spec.actor_id,
        resources=dict(spec.resources),
        name=spec.name,
        placement_group=spec.scheduling
        if spec.scheduling.get("type") == "placement_group"
        else None,
    )
    fake = TaskSpec(
        task_id=spec.actor_id,
        job_id=spec.job_id,
        name=f"{spec.class_name}.__init__",
        actor_id=spec.actor_id,
    )
    task_context.set_current(ex.context_for(fake))
    try:
        cls = ex.load_function(spec.job_id, spec.class_key)
        a, k = deserialize(spec.args, [memoryview(b) for b in spec.arg_bufs])
        if spec.ref_args:
            refs = [ObjectRef(r.oid, r.owner) for r in spec.ref_args]
            values = ex.cw.objects.get(refs, None)
            a, k = substitute_args(a, k, values)
        instance = cls(*a, **k)
    except Exception as exc:  # noqa: BLE001  (user code or user values)
        err = ex.task_error(fake, exc)
        ex.cw.loop_thread.call(_resolve, fut, ex.create_reply(False, err))
        return
    finally:
        task_context.set_current(None)
    try:
        task_context.process_actor["repr"] = repr(instance)
    except Exception:  # noqa: BLE001  (user code or user values)
        task_context.process_actor["repr"] = spec.class_name
    ex.actor = ActorHost(ex, spec, instance)
    ex.cw.loop_thread.call(_resolve, fut, ex.create_reply(True))
