"""The no-op worker of the simulated nodes: answers task pushes and actor creations.

Every lease a simulated node grants names this worker's address (with a fresh
worker id), so a submitter pushes its task here over the real protocol
(``worker.push_task``): the reply carries ``None`` for each return, inline,
as a real worker's :class:`ReturnPacker` would, after ``delay_s`` (0: at once).
While the gate is held (the simulator's ``hold`` command) pushed tasks wait:
they are "running" until ``release``.  ``worker.create_actor`` always succeeds; actor method calls are pushes too.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ember.common.ids import object_id_for
from ember.protocol.messages import (
    SCHEMA,
    CreateActorOnWorkerReply,
    Empty,
    ReturnObject,
    TaskReply,
)
from ember.rpc.connection import Connection, Server
from ember.runtime.serialization import serialize

#: the frames of a ``None`` return value (what a real worker sends inline)
_NONE_FRAMES = serialize(None).frames()


class SimWorker:
    """One server that plays every worker of one simulator process."""

    def __init__(self, token: bytes, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        #: tasks (and actor calls) being "run" now, and done so far
        self.running = 0
        self.completed = 0
        self.actors_created = 0
        #: the most tasks that were running at once
        self.peak_running = 0
        self.handlers = {
            "worker.push_task": self.h_push_task,
            "worker.create_actor": self.h_create_actor,
            "worker.exit": lambda c, req, b: None,
            "worker.release_escrow": lambda c, req, b: None,
            "worker.cancel_task": lambda c, req, b: Empty(),
            "worker.node_died": lambda c, req, b: None,
        }
        #: the shared server (``listen``); nodes may serve ``handlers`` themselves
        self.server = Server(token=token, schema=SCHEMA, handlers=self.handlers)
        self.address = ""
        #: while cleared, pushed tasks wait ("running") until it is set again
        self.gate = asyncio.Event()
        self.gate.set()

    async def listen(self, host: str) -> str:
        self.address = await self.server.listen(f"tcp:{host}:0")
        return self.address

    async def h_push_task(self, conn: Connection, spec: Any, bufs: Any) -> Any:
        self.running += 1
        self.peak_running = max(self.peak_running, self.running)
        try:
            if not self.gate.is_set():
                await self.gate.wait()
            if self.delay_s > 0:
                await asyncio.sleep(self.delay_s)  # the simulated run time
        finally:
            self.running -= 1
        self.completed += 1
        if spec.streaming:
            return TaskReply(num_streamed=0), []
        n = spec.num_returns
        returns = [
            ReturnObject(
                oid=object_id_for(spec.task_id, i + 1), nbufs=len(_NONE_FRAMES)
            )
            for i in range(n)
        ]
        return TaskReply(returns=returns), list(_NONE_FRAMES) * n

    def h_create_actor(self, conn: Connection, req: Any, bufs: Any) -> Any:
        self.actors_created += 1
        return CreateActorOnWorkerReply(ok=True)

    def close(self) -> None:
        self.server.close()
