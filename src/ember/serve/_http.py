"""HTTP on the replica side: an ASGI scope from the proxy's request record, handler
return values turned into responses the way Ray Serve turns them, and an ASGI app run
with its sent messages collected for the stream back to the proxy."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

__all__ = ["ERROR_500", "asgi_messages", "make_scope", "to_response"]

logger = logging.getLogger(__name__)

ERROR_500: list[dict[str, Any]] = [
    {
        "type": "http.response.start",
        "status": 500,
        "headers": [(b"content-type", b"text/plain; charset=utf-8")],
    },
    {"type": "http.response.body", "body": b"Internal Server Error"},
]


def make_scope(req: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": req.get("http_version", "1.1"),
        "method": req["method"],
        "scheme": req.get("scheme", "http"),
        "path": req["path"],
        "raw_path": req["path"].encode(),
        "query_string": req.get("query_string", b""),
        "root_path": req.get("root_path", ""),
        "headers": [tuple(h) for h in req.get("headers", ())],
        "client": req.get("client"),
        "server": req.get("server"),
        "state": {},
    }


def _json_body(obj: Any) -> bytes:
    try:
        from fastapi.encoders import jsonable_encoder

        obj = jsonable_encoder(obj)
    except ImportError:
        pass
    return json.dumps(obj, separators=(",", ":")).encode()


def to_response(result: Any) -> Any:
    """A starlette Response for what a handler returned (Ray's conversions)."""
    from starlette.responses import Response, StreamingResponse

    if isinstance(result, Response):
        return result
    if inspect.isgenerator(result) or inspect.isasyncgen(result):
        return StreamingResponse(result)  # type: ignore[arg-type]
    if result is None:
        body, ctype = b"", "text/plain"
    elif isinstance(result, bytes):
        body, ctype = result, "text/plain"
    elif isinstance(result, str):
        body, ctype = result.encode(), "text/plain; charset=utf-8"
    else:
        body, ctype = _json_body(result), "application/json"
    return Response(body, headers={"content-type": ctype})


async def asgi_messages(
    app: Callable[..., Any], scope: dict[str, Any], body: bytes
) -> AsyncIterator[list[dict[str, Any]]]:
    """Run an ASGI app on one request; yield its sent messages in batches as they come."""
    q: asyncio.Queue[Any] = asyncio.Queue()
    sent_body = False

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client stays connected until the reply ends
        return {"type": "http.disconnect"}

    async def send(msg: dict[str, Any]) -> None:
        q.put_nowait(msg)

    task = asyncio.ensure_future(app(scope, receive, send))
    started = False
    getter: asyncio.Future[Any] | None = None
    try:
        while True:
            if getter is None:
                getter = asyncio.ensure_future(q.get())
            await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            batch = []
            if getter.done():
                batch.append(getter.result())
                getter = None
                while not q.empty():
                    batch.append(q.get_nowait())
            if batch:
                started = started or any(
                    m["type"] == "http.response.start" for m in batch
                )
                yield batch
            if task.done() and getter is not None and q.empty():
                break
        err = task.exception()
        if err is not None:
            logger.error("the HTTP handler raised", exc_info=err)
            if not started:
                yield ERROR_500
    finally:
        if getter is not None:
            getter.cancel()
        if not task.done():
            task.cancel()
