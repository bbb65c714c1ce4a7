"""A minimal Chrome DevTools Protocol client: one headless Chromium page the tests drive.

:class:`Browser` starts ``chromium --headless=new`` with a profile folder of
its own and a debugging port (0: Chromium picks one and writes it to
``DevToolsActivePort`` in the profile), connects to its first page over the
DevTools websocket (aiohttp, on a loop in a background thread) and offers
blocking calls: :meth:`Browser.navigate`, :meth:`Browser.evaluate`,
:meth:`Browser.wait_for`, :meth:`Browser.screenshot`.  Every console error,
uncaught exception and error log entry of the page is kept in
:attr:`Browser.errors`; every protocol event in :attr:`Browser.events` (for
the page-weight bench).  :meth:`Browser.close` kills Chromium's whole process
group (it runs in a session of its own) and waits until none of it is left.

    with Browser() as b:
        b.navigate("http://127.0.0.1:8265/")
        assert b.wait_for("document.title") == "..."
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from typing import Any

import aiohttp
import psutil

BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class CDPError(Exception):
    """The browser answered a command with an error, or a page script threw."""


def find_chromium() -> str | None:
    """The path of a Chromium or Chrome binary on PATH (None if there is none)."""
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _describe(details: dict[str, Any]) -> str:
    exc = details.get("exception") or {}
    text = exc.get("description") or details.get("text") or "exception"
    where = details.get("url") or ""
    return f"{text} ({where}:{details.get('lineNumber', '?')})"


class _Session:
    """The async side: one websocket to one page target, on the background loop."""

    def __init__(self) -> None:
        self.http: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.waiters: list[tuple[str, asyncio.Future[dict[str, Any]]]] = []
        self.events: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.reader: asyncio.Task[None] | None = None

    async def open(self, ws_url: str) -> None:
        self.http = aiohttp.ClientSession()
        self.ws = await self.http.ws_connect(ws_url, max_msg_size=0)
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(msg.data)
            if "id" in data:
                fut = self.pending.pop(data["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(data)
            else:
                self._event(data)
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(
                    CDPError("the browser closed the DevTools connection")
                )

    def _event(self, ev: dict[str, Any]) -> None:
        self.events.append(ev)
        method, params = ev.get("method", ""), ev.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in (
            "error",
            "assert",
        ):
            args = [a.get("value", a.get("description", "")) for a in params["args"]]
            self.errors.append("console.error: " + " ".join(map(str, args)))
        elif method == "Runtime.exceptionThrown":
            self.errors.append("exception: " + _describe(params["exceptionDetails"]))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            e = params["entry"]
            self.errors.append(
                f"log ({e.get('source')}): {e.get('text')} {e.get('url', '')}"
            )
        for i, (name, fut) in enumerate(self.waiters):
            if name == method and not fut.done():
                fut.set_result(params)
                del self.waiters[i]
                break

    async def send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self.ws is not None
        i = next(self.ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[i] = fut
        await self.ws.send_str(
            json.dumps({"id": i, "method": method, "params": params})
        )
        reply = await fut
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error'].get('message')}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def expect(self, method: str) -> asyncio.Future[dict[str, Any]]:
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiters.append((method, fut))
        return fut

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.wait([self.reader], timeout=5)
        if self.http is not None:
            await self.http.close()


class Browser:
    """A headless Chromium and its first page, driven through blocking calls.

    Args:
        binary: the browser to start (default: :func:`find_chromium`).
        port: the DevTools port (0: a free one, read from the profile).
        window: the page's viewport size, ``(width, height)``.
        timeout_s: the deadline of each call that waits for the browser.
    """

    def __init__(
        self,
        binary: str | None = None,
        port: int = 0,
        window: tuple[int, int] = (1400, 1000),
        timeout_s: float = 30.0,
    ) -> None:
        self.binary = binary or find_chromium()
        if not self.binary:
            raise FileNotFoundError(f"no browser on PATH (looked for {BINARIES})")
        self.timeout_s = timeout_s
        self.profile = tempfile.mkdtemp(prefix="dashpages-chrome-", dir="/tmp")
        self.log_path = os.path.join(self.profile, "chromium.log")
        args = [
            self.binary,
            "--headless=new",
            f"--remote-debugging-port={port}",
            "--remote-debugging-address=127.0.0.1",
            f"--user-data-dir={self.profile}",
            f"--window-size={window[0]},{window[1]}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--metrics-recording-only",
            "--password-store=basic",
            "--use-mock-keychain",
        ]
        if os.geteuid() == 0:  # CI runs as root; Chromium's sandbox refuses root
            args.append("--no-sandbox")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [*args, "about:blank"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.session = _Session()
        self._seen: set[psutil.Process] = set()
        self.close_error: BaseException | None = None
        try:
            self._run(self._connect(port))
            for domain in ("Runtime", "Log", "Page", "Network"):
                self.send(f"{domain}.enable")
        except BaseException:
            self.close()
            raise

    # ---- plumbing ----

    def _run(self, coro: Any, timeout_s: float | None = None) -> Any:
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout=timeout_s or self.timeout_s)
        except TimeoutError:
            fut.cancel()
            raise

    def _devtools_port(self, port: int) -> int | None:
        if port:
            return port
        try:
            with open(os.path.join(self.profile, "DevToolsActivePort")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None

    async def _connect(self, port: int) -> None:
        deadline = time.monotonic() + self.timeout_s
        async with aiohttp.ClientSession() as http:
            while True:
                if self.proc.poll() is not None:
                    raise CDPError(f"the browser exited: {self.log()[-2000:]}")
                real = self._devtools_port(port)
                try:
                    if real is not None:
                        url = f"http://127.0.0.1:{real}/json/list"
                        async with http.get(url) as r:
                            targets = await r.json(content_type=None)
                        pages = [t for t in targets if t.get("type") == "page"]
                        if pages:
                            self._remember_children()
                            await self.session.open(pages[0]["webSocketDebuggerUrl"])
                            return
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise CDPError(
                        f"the browser's DevTools did not answer: {self.log()}"
                    )
                await asyncio.sleep(
                    0.05
                )  # polling the browser's start, with a deadline

    def log(self) -> str:
        """What Chromium printed so far."""
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # ---- commands ----

    @property
    def errors(self) -> list[str]:
        """The page's console errors, uncaught exceptions and error log entries."""
        return list(self.session.errors)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every DevTools event received so far (``method``, ``params``)."""
        return list(self.session.events)

    def clear_events(self) -> None:
        """Forget the events and errors seen so far."""

        async def clear() -> None:  # on the loop, between two events
            self.session.events.clear()
            self.session.errors.clear()

        self._run(clear())

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result."""
        result: dict[str, Any] = self._run(self.session.send(method, params))
        return result

    def navigate(self, url: str) -> None:
        """Load ``url`` in the page and wait for its load event."""

        async def go() -> None:
            loaded = self.session.expect("Page.loadEventFired")
            reply = await self.session.send("Page.navigate", {"url": url})
            if reply.get("errorText"):
                raise CDPError(f"navigating to {url}: {reply['errorText']}")
            await loaded

        self._run(go())

    def evaluate_and_load(self, expression: str) -> None:
        """Run a JS expression that loads another document (a form's submit); wait for it."""

        async def go() -> None:
            loaded = self.session.expect("Page.loadEventFired")
            await self.session.send("Runtime.evaluate", {"expression": expression})
            await loaded

        self._run(go())

    def evaluate(self, expression: str) -> Any:
        """The value of a JS expression in the page (a promise is awaited)."""
        result = self.send(
            "Runtime.evaluate",
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            raise CDPError(f"{expression!r}: {_describe(result['exceptionDetails'])}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout_s: float | None = None) -> Any:
        """Evaluate ``expression`` until it is truthy; return that value.

        Raises:
            TimeoutError: still falsy after ``timeout_s`` (default: the
                browser's timeout); the message has the page's text.
        """
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                text = self.evaluate("document.body ? document.body.innerText : ''")
                raise TimeoutError(
                    f"{expression!r} stayed falsy; the page: {text[:3000]}"
                )
            time.sleep(0.1)  # polling the page for a condition, with a deadline

    def text(self, selector: str = "body") -> str:
        """The rendered text of the first element matching ``selector`` ("" if none)."""
        value = self.evaluate(
            f"(document.querySelector({json.dumps(selector)}) || {{}}).innerText || ''"
        )
        return str(value)

    def screenshot(self, path: str) -> str:
        """Save a PNG of the page's viewport at ``path``; return ``path``."""
        shot = self.send("Page.captureScreenshot", format="png")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        return path

    # ---- the end ----

    def _group(self) -> list[psutil.Process]:
        """Chromium's live processes: its process group and every descendant seen."""
        out = []
        for p in {*psutil.process_iter(), *self._seen}:
            try:
                mine = p in self._seen or os.getpgid(p.pid) == self.proc.pid
                if mine and p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p)
            except (ProcessLookupError, psutil.NoSuchProcess, psutil.ZombieProcess):
                pass
        return out

    def _remember_children(self) -> None:
        try:
            self._seen.update(psutil.Process(self.proc.pid).children(recursive=True))
        except psutil.NoSuchProcess:
            pass

    def close(self) -> None:
        """Close the connection, kill Chromium's process group, wait until it is gone."""
        if self.loop.is_running():
            try:
                self._run(self.session.close(), timeout_s=10)
            except (CDPError, OSError, TimeoutError, aiohttp.ClientError) as err:
                self.close_error = err  # the browser is killed below all the same
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
        self._remember_children()
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its helpers, if any is left
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        for p in self._group():  # a helper that left the group (a zygote's setsid)
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        deadline = time.monotonic() + 10
        while self._group() and time.monotonic() < deadline:
            time.sleep(
                0.05
            )  # waiting for the killed group to be reaped, with a deadline
        left = self._group()
        if not self.loop.is_running() and not self.loop.is_closed():
            self.loop.close()
        shutil.rmtree(self.profile, ignore_errors=True)
        if left:
            raise AssertionError(f"Chromium processes outlive close(): {left}")

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
