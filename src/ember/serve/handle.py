"""``DeploymentHandle`` and what its ``.remote()`` returns: ``DeploymentResponse``(``Generator``)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ember.exceptions import ActorDiedError, ActorUnavailableError
from ember.serve._common import ReplicaDrainingError, RequestMeta, deployment_key
from ember.serve._router import DeploymentRouter, ServeClient
from ember.serve.exceptions import RequestCancelledError

__all__ = ["DeploymentHandle", "DeploymentResponse", "DeploymentResponseGenerator"]

_UNSET: Any = object()
_END = object()


class DeploymentResponse:
    """The future result of one handle call: ``await`` it, or ``.result(timeout_s=)``.

    Passed as an argument to another handle call, it is resolved in the router, so the
    caller does not wait; the replica receives the value.
    """

    def __init__(self) -> None:
        self._fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._ref: Any = None
        self._task: concurrent.futures.Future[Any] | None = None

    def result(
        self, *, timeout_s: float | None = None, _skip_asyncio_check: bool = False
    ) -> Any:
        try:
            return self._fut.result(timeout_s)
        except concurrent.futures.CancelledError:
            raise RequestCancelledError("the request was cancelled") from None
        except concurrent.futures.TimeoutError:
            raise TimeoutError(
                f"Timed out waiting for the result after {timeout_s}s."
            ) from None

    def __await__(self) -> Any:
        return asyncio.wrap_future(self._fut).__await__()

    def cancel(self) -> None:
        """Cancel the call: a queued call is dropped; the replica is not interrupted."""
        if self._task is not None:
            self._task.cancel()
        self._fut.cancel()

    def cancelled(self) -> bool:
        return self._fut.cancelled()

    async def _to_object_ref(self) -> Any:
        await self
        return self._ref

    def _to_object_ref_sync(self, timeout_s: float | None = None) -> Any:
        self.result(timeout_s=timeout_s)
        return self._ref


class DeploymentResponseGenerator:
    """The items a streaming handle call yields (``handle.options(stream=True)``)."""

    def __init__(self, client: ServeClient) -> None:
        self._client = client
        self._q: asyncio.Queue[Any] | None = None

    def _queue(self) -> asyncio.Queue[Any]:
        if self._q is None:
            self._q = asyncio.Queue()
        return self._q

    async def _next(self) -> Any:
        item = await self._queue().get()
        if item is _END:
            self._q = None
            self._queue().put_nowait(_END)
            raise StopAsyncIteration
        ok, value = item
        if not ok:
            raise value
        return value

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            return self._client.submit(self._next()).result()
        except StopAsyncIteration:
            raise StopIteration from None

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        return await asyncio.wrap_future(self._client.submit(self._next()))


async def _resolve(value: Any) -> Any:
    if isinstance(value, DeploymentResponse):
        await value
        return value._ref
    return value


def _failed(router: DeploymentRouter, rid: str, err: BaseException) -> bool:
    """Record a failed call; True when it may go to another replica (no user code ran)."""
    if isinstance(err, ReplicaDrainingError):
        return True
    if isinstance(err, (ActorDiedError, ActorUnavailableError)):
        retired = router.retired(rid)
        router.replica_failed(rid)
        return retired
    return False


async def _unary(
    router: DeploymentRouter,
    meta: RequestMeta,
    args: tuple,
    kwargs: dict,
    resp: DeploymentResponse,
) -> Any:
    args = tuple([await _resolve(a) for a in args])
    kwargs = {k: await _resolve(v) for k, v in kwargs.items()}
    while True:
        rid, actor = await router.assign(meta.multiplexed_model_id)
        try:
            ref = actor.handle_request.remote(meta, *args, **kwargs)
            value = await ref
        except Exception as e:
            if _failed(router, rid, e):
                continue
            raise
        finally:
            router.release(rid)
        resp._ref = ref
        return value


async def _stream(
    router: DeploymentRouter,
    meta: RequestMeta,
    args: tuple,
    kwargs: dict,
    gen: DeploymentResponseGenerator,
) -> None:
    q = gen._queue()
    try:
        args = tuple([await _resolve(a) for a in args])
        kwargs = {k: await _resolve(v) for k, v in kwargs.items()}
        while True:
            rid, actor = await router.assign(meta.multiplexed_model_id)
            sent = False
            try:
                if meta.http:
                    reply = await actor.handle_http.remote(meta, *args, **kwargs)
                    q.put_nowait((True, reply[-1]))
                    sent = True
                    if reply[0] != "stream":
                        break
                    refs = actor.http_stream.options(num_returns="streaming").remote(
                        reply[1]
                    )
                else:
                    refs = actor.handle_request_streaming.options(
                        num_returns="streaming"
                    ).remote(meta, *args, **kwargs)
                async for ref in refs:
                    q.put_nowait((True, await ref))
                    sent = True
            except Exception as e:
                if not sent and _failed(router, rid, e):
                    continue
                raise
            finally:
                router.release(rid)
            break
        q.put_nowait(_END)
    except BaseException as e:  # noqa: BLE001 - the consumer re-raises it
        q.put_nowait((False, e))


class DeploymentHandle:
    """Calls one deployment of one application: ``handle.remote(...)``, ``handle.method.remote``."""

    def __init__(
        self,
        deployment_name: str,
        app_name: str = "default",
        *,
        _method_name: str = "__call__",
        _stream: bool = False,
        _multiplexed_model_id: str = "",
    ) -> None:
        self._deployment_name = deployment_name
        self._app_name = app_name
        self._method_name = _method_name
        self._stream = _stream
        self._model_id = _multiplexed_model_id

    @property
    def deployment_name(self) -> str:
        return self._deployment_name

    @property
    def app_name(self) -> str:
        return self._app_name

    def options(
        self,
        *,
        method_name: str = _UNSET,
        stream: bool = _UNSET,
        multiplexed_model_id: str = _UNSET,
        use_new_handle_api: bool = _UNSET,
        **_ignored: Any,
    ) -> DeploymentHandle:
        return DeploymentHandle(
            self._deployment_name,
            self._app_name,
            _method_name=self._method_name if method_name is _UNSET else method_name,
            _stream=self._stream if stream is _UNSET else bool(stream),
            _multiplexed_model_id=(
                self._model_id
                if multiplexed_model_id is _UNSET
                else multiplexed_model_id
            ),
        )

    def __getattr__(self, name: str) -> DeploymentHandle:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.options(method_name=name)

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        meta = RequestMeta(
            method_name=self._method_name, multiplexed_model_id=self._model_id
        )
        return self._call(meta, args, kwargs, self._stream)

    def _call(self, meta: RequestMeta, args: tuple, kwargs: dict, stream: bool) -> Any:
        client = ServeClient.get()
        key = deployment_key(self._app_name, self._deployment_name)

        async def run(target: Any) -> Any:
            router = client.router(key)
            if stream:
                return await _stream(router, meta, args, kwargs, target)
            return await _unary(router, meta, args, kwargs, target)

        if stream:
            gen = DeploymentResponseGenerator(client)
            client.submit(run(gen))
            return gen
        resp = DeploymentResponse()
        fut = resp._task = client.submit(run(resp))
        fut.add_done_callback(lambda f: _copy(f, resp._fut))
        return resp

    def __reduce__(self) -> Any:
        return (
            _rebuild,
            (
                self._deployment_name,
                self._app_name,
                self._method_name,
                self._stream,
                self._model_id,
            ),
        )

    def __repr__(self) -> str:
        return f"DeploymentHandle(deployment='{self._deployment_name}', app='{self._app_name}')"


def _copy(
    src: concurrent.futures.Future[Any], dst: concurrent.futures.Future[Any]
) -> None:
    if dst.done():
        return
    if src.cancelled():
        dst.cancel()
    elif src.exception() is not None:
        dst.set_exception(src.exception())
    else:
        dst.set_result(src.result())


def _rebuild(
    dep: str, app: str, method: str, stream: bool, model_id: str
) -> DeploymentHandle:
    return DeploymentHandle(
        dep, app, _method_name=method, _stream=stream, _multiplexed_model_id=model_id
    )
