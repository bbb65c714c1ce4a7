"""The replica actor: builds the user's class (or wraps the function) and runs its calls.

Every entry point is a coroutine on the actor's event loop; sync user methods run in
a thread (with the request's context), so one slow call does not stall the rest.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import cloudpickle

from ember.serve import context
from ember.serve._common import ReplicaDrainingError, RequestMeta
from ember.serve._http import ERROR_500, asgi_messages, make_scope, to_response
from ember.serve.deployment import DeploymentSpec
from ember.serve.exceptions import ServeConfigError

__all__ = ["ServeReplica"]

logger = logging.getLogger(__name__)


async def call_user(fn: Any, *args: Any, **kwargs: Any) -> Any:
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        result = fn(*args, **kwargs)
    else:
        result = await asyncio.to_thread(fn, *args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


class _FunctionServable:
    """A function deployment's object: calling it calls the function."""

    def __init__(self, fn: Any, args: tuple, kwargs: dict) -> None:
        self._fn = fn
        self._args = args
        self._kwargs = kwargs

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn(*args, *self._args, **kwargs, **self._kwargs)


class ServeReplica:
    """One replica of a deployment (the controller creates it as a detached named actor)."""

    def __init__(self, replica_id: str, spec: DeploymentSpec) -> None:
        self._rid = replica_id
        self._spec = spec
        self._obj: Any = None
        self._asgi: Any = None
        self._ongoing = 0
        self._draining = False
        self._streams: dict[str, AsyncIterator[Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def initialize(self) -> str:
        target = cloudpickle.loads(self._spec.callable_blob)
        args, kwargs = cloudpickle.loads(self._spec.init_blob)
        ctx = context.ReplicaContext(
            self._spec.app_name, self._spec.name, self._rid, None
        )
        context.set_replica_context(ctx)
        if inspect.isclass(target):
            obj = target(*args, **kwargs)
            if inspect.isawaitable(obj):  # pragma: no cover - async constructors
                obj = await obj
        else:
            obj = _FunctionServable(target, args, kwargs)
        self._obj = ctx.servable_object = obj
        self._asgi = getattr(target, "_serve_asgi_app", None)
        if self._spec.config.user_config is not None:
            await self.reconfigure(self._spec.config.user_config)
        return self._rid

    async def reconfigure(self, user_config: Any) -> None:
        fn = getattr(self._obj, "reconfigure", None)
        if fn is None:
            raise ServeConfigError(
                "user_config is set but the deployment has no reconfigure() method"
            )
        await call_user(fn, user_config)

    async def check_health(self) -> None:
        fn = getattr(self._obj, "check_health", None)
        if fn is not None:
            await call_user(fn)

    async def num_ongoing(self) -> int:
        return self._ongoing

    def _enter(self, meta: RequestMeta) -> None:
        if self._draining:
            raise ReplicaDrainingError(self._rid)
        self._ongoing += 1
        context.request_model_id.set(meta.multiplexed_model_id)

    def _method(self, name: str) -> Any:
        fn = getattr(self._obj, name, None)
        if fn is None:
            raise AttributeError(
                f"deployment {self._spec.name!r} has no method {name!r}"
            )
        return fn

    async def handle_request(self, meta: RequestMeta, *args: Any, **kwargs: Any) -> Any:
        self._enter(meta)
        try:
            result = await call_user(self._method(meta.method_name), *args, **kwargs)
            if inspect.isgenerator(result) or inspect.isasyncgen(result):
                raise TypeError(
                    f"Method '{meta.method_name}' returned a generator. You must use "
                    "`handle.options(stream=True)` to call generators on a deployment."
                )
            return result
        finally:
            self._ongoing -= 1

    async def handle_request_streaming(
        self, meta: RequestMeta, *args: Any, **kwargs: Any
    ) -> AsyncIterator[Any]:
        self._enter(meta)
        try:
            result = await call_user(self._method(meta.method_name), *args, **kwargs)
            if inspect.isasyncgen(result):
                async for item in result:
                    yield item
            elif inspect.isgenerator(result):
                sentinel = object()
                while (
                    item := await asyncio.to_thread(next, result, sentinel)
                ) is not sentinel:
                    yield item
            else:
                raise TypeError(
                    f"Method '{meta.method_name}' did not return a generator, but the "
                    "handle was called with stream=True."
                )
        finally:
            self._ongoing -= 1

    async def handle_http(self, meta: RequestMeta, req: dict[str, Any]) -> tuple:
        """Run one HTTP request. A response that completes comes back whole in this
        one call: ``("done", messages)``. A streaming one (a body part with
        ``more_body``) returns ``("stream", id, first messages)``; the caller then
        reads the rest from :meth:`http_stream` on this replica."""
        self._enter(meta)
        scope = make_scope(req)
        app = self._asgi if self._asgi is not None else self._call_app
        gen = asgi_messages(app, scope, req.get("body", b""))
        out: list[dict[str, Any]] = []
        try:
            async for batch in gen:
                out += batch
                last = batch[-1]
                if last["type"] != "http.response.body":
                    continue
                if not last.get("more_body", False):
                    self._finish_later(gen)  # background tasks may still run
                    return ("done", out)
                sid = uuid.uuid4().hex
                self._streams[sid] = gen
                return ("stream", sid, out)
        except BaseException:
            self._ongoing -= 1
            raise
        self._ongoing -= 1
        return ("done", out)

    def _finish_later(self, gen: AsyncIterator[Any]) -> None:
        async def drain() -> None:
            try:
                async for _ in gen:
                    pass
            finally:
                self._ongoing -= 1

        t = asyncio.get_running_loop().create_task(drain())
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def http_stream(self, sid: str) -> AsyncIterator[Any]:
        """The rest of a streaming HTTP response begun by :meth:`handle_http`."""
        gen = self._streams.pop(sid)
        try:
            async for batch in gen:
                yield batch
        finally:
            self._ongoing -= 1

    async def _call_app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        from starlette.requests import Request

        try:
            result = await call_user(self._method("__call__"), Request(scope, receive))
        except Exception:
            logger.exception("the deployment's __call__ raised")
            for m in ERROR_500:
                await send(m)
            return
        await to_response(result)(scope, receive, send)

    async def prepare_for_shutdown(self, wait_loop_s: float, timeout_s: float) -> None:
        """Drain: wait for a quiet spell, refuse new requests, finish the running ones."""
        deadline = time.monotonic() + timeout_s
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            if self._ongoing:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= wait_loop_s:
                break
            await asyncio.sleep(0.05)
        self._draining = True
        while self._ongoing and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        fn = getattr(self._obj, "__del__", None)
        if fn is not None:
            try:
                await call_user(fn)
            except Exception:
                logger.exception("the deployment's __del__ raised")
