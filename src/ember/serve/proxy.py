"""The HTTP proxy actor: uvicorn serving a small ASGI app that routes by route prefix.

The server runs on a thread of its own (its own event loop). A request is read whole,
matched to the application with the longest route prefix, and streamed through the
ingress deployment's router (``handle_http`` on a replica yields ASGI messages).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

from ember.serve._common import ROUTES_KEY, RequestMeta
from ember.serve._router import ServeClient
from ember.serve.exceptions import BackPressureError, DeploymentUnavailableError
from ember.serve.handle import DeploymentHandle

__all__ = ["ServeProxy", "match_route"]

logger = logging.getLogger(__name__)

MODEL_ID_HEADER = b"serve_multiplexed_model_id"


def match_route(routes: dict[str, Any], path: str) -> str | None:
    """The longest route prefix that ``path`` lies under (None when there is none)."""
    best: str | None = None
    for prefix in routes:
        under = (
            prefix == "/" or path == prefix or path.startswith(prefix.rstrip("/") + "/")
        )
        if under and (best is None or len(prefix) > len(best)):
            best = prefix
    return best


async def _plain(
    send: Any, status: int, body: bytes, ctype: bytes = b"text/plain; charset=utf-8"
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", ctype)],
        }
    )
    await send({"type": "http.response.body", "body": body})


class ServeProxy:
    """One HTTP proxy (Ray runs one per node; ember runs one on the head)."""

    def __init__(
        self,
        host: str,
        port: int,
        root_path: str = "",
        keep_alive_s: float = 5.0,
        request_timeout_s: float | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.routes: dict[str, tuple[str, str]] = {}
        self.request_timeout_s = request_timeout_s
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._server: Any = None
        self._client = ServeClient.get()
        self._client.loop.call_soon_threadsafe(
            self._client.watch, ROUTES_KEY, self._on_routes
        )
        self._thread = threading.Thread(
            target=self._serve,
            args=(root_path, keep_alive_s),
            name="ember-serve-http",
            daemon=True,
        )
        self._thread.start()

    def _on_routes(self, snap: dict[str, Any]) -> None:
        self.routes = dict(snap["routes"])

    def _serve(self, root_path: str, keep_alive_s: float) -> None:
        try:
            import uvicorn
        except ImportError as e:
            self._error = ImportError(
                "ember.serve's HTTP proxy needs uvicorn and starlette: "
                "pip install 'ember[serve]'"
            )
            self._error.__cause__ = e
            self._started.set()
            return
        config = uvicorn.Config(
            self._app,
            host=self.host,
            port=self.port,
            root_path=root_path,
            lifespan="off",
            interface="asgi3",
            log_level="warning",
            access_log=False,
            timeout_keep_alive=int(keep_alive_s),
        )
        self._server = uvicorn.Server(config)
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._run(loop))
        except BaseException as e:  # noqa: BLE001 - uvicorn exits (SystemExit) when it cannot bind
            self._error = OSError(
                f"the Serve HTTP proxy could not listen on {self.host}:{self.port}: {e!r}"
            )
        finally:
            self._started.set()

    async def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        task = loop.create_task(self._server.serve())
        while not self._server.started and not task.done():
            await asyncio.sleep(0.01)
        if self._server.started:
            self._started.set()
        await task

    async def ready(self) -> str:
        await asyncio.to_thread(self._started.wait)
        if self._error is not None:
            raise self._error
        return f"{self.host}:{self.port}"

    async def check_health(self) -> None:
        if self._error is not None or not self._thread.is_alive():
            raise RuntimeError("the HTTP server thread has stopped")

    async def shutdown(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        await asyncio.to_thread(self._thread.join, 5)

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/-/healthz":
            return await _plain(send, 200, b"success")
        if path == "/-/routes":
            body = json.dumps({p: a for p, (a, _) in self.routes.items()}).encode()
            return await _plain(send, 200, body, b"application/json")
        prefix = match_route(self.routes, path)
        if prefix is None:
            msg = f"Path '{path}' not found. Ping http://.../-/routes for available routes."
            return await _plain(send, 404, msg.encode())
        app_name, ingress = self.routes[prefix]
        chunks = []
        more = True
        while more:
            m = await receive()
            if m["type"] != "http.request":
                return
            chunks.append(m.get("body", b""))
            more = m.get("more_body", False)
        headers = list(scope.get("headers", ()))
        model_id = next(
            (v.decode() for k, v in headers if k.lower() == MODEL_ID_HEADER), ""
        )
        req = {
            "method": scope["method"],
            "path": path,
            "query_string": scope.get("query_string", b""),
            "headers": headers,
            "client": scope.get("client"),
            "server": scope.get("server"),
            "scheme": scope.get("scheme", "http"),
            "http_version": scope.get("http_version", "1.1"),
            "root_path": "" if prefix == "/" else prefix.rstrip("/"),
            "body": b"".join(chunks),
        }
        meta = RequestMeta(multiplexed_model_id=model_id, http=True)
        gen = DeploymentHandle(ingress, app_name)._call(meta, (req,), {}, True)
        started = False
        try:
            async with asyncio.timeout(self.request_timeout_s):
                async for batch in gen:
                    for m in batch:
                        started = started or m["type"] == "http.response.start"
                        await send(m)
        except TimeoutError:
            if not started:
                msg = f"Request timed out after {self.request_timeout_s}s."
                await _plain(send, 408, msg.encode())
        except BackPressureError as e:
            if not started:
                await _plain(send, 503, e.message.encode())
        except DeploymentUnavailableError as e:
            if not started:
                await _plain(send, 503, str(e).encode())
        except Exception:
            logger.exception("serve proxy: the request failed")
            if not started:
                await _plain(send, 500, b"Internal Server Error")
            else:
                raise
