"""Replies written from another thread (``Connection.reply_from_thread``).

A handler returns ``REPLY_LATER`` and a thread answers; the frames must arrive
whole and in order, also when one reply is larger than the socket buffer (the
rest goes through the loop's backlog) and loop-written replies are interleaved.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import msgspec

from ember.rpc.connection import REPLY_LATER, Connection, Schema, Server, connect

TOKEN = b"token"
STEP_S = 10.0


class Echo(msgspec.Struct, array_like=True):
    text: str


SCHEMA = Schema({"t.later": (Echo, Echo), "t.now": (Echo, Echo)})


def test_thread_replies_arrive_whole_and_in_order(tmp_path: Path) -> None:
    big = bytes(range(256)) * (64 * 1024)  # 16 MiB: more than a socket buffer holds
    jobs: list[tuple[Connection, int, str]] = []
    ready = threading.Condition()

    def later(conn: Connection, req: Echo, bufs: list[memoryview]) -> object:
        assert conn.enable_thread_writes()
        with ready:
            jobs.append((conn, conn.current_req_id, req.text))
            ready.notify()
        return REPLY_LATER

    def now(conn: Connection, req: Echo, bufs: list[memoryview]) -> Echo:
        return Echo(text="now:" + req.text)

    stop = threading.Event()

    def replier() -> None:
        while not stop.is_set():
            with ready:
                if not jobs:
                    ready.wait(0.05)
                    continue
                conn, req_id, text = jobs.pop(0)
            frames = [big] if text.startswith("big") else []
            conn.reply_from_thread(req_id, (Echo(text="later:" + text), frames))

    async def main() -> None:
        server = Server(
            token=TOKEN, schema=SCHEMA, handlers={"t.later": later, "t.now": now}
        )
        address = await server.listen(f"unix:{tmp_path / 'sock'}")
        thread = threading.Thread(target=replier, daemon=True)
        thread.start()
        client = await connect(address, token=TOKEN, schema=SCHEMA, timeout=STEP_S)
        try:
            calls = []
            for i in range(20):
                name = f"big{i}" if i % 5 == 0 else f"small{i}"
                calls.append(client.call("t.later", Echo(text=name)))
                calls.append(client.call("t.now", Echo(text=str(i))))
            async with asyncio.timeout(STEP_S * 3):
                results = await asyncio.gather(*calls)
        finally:
            stop.set()
            client.close()
            server.close()
            thread.join(STEP_S)
        for i in range(20):
            (later_reply, later_bufs), (now_reply, _) = (
                results[2 * i],
                results[2 * i + 1],
            )
            name = f"big{i}" if i % 5 == 0 else f"small{i}"
            assert later_reply == Echo(text="later:" + name)
            assert now_reply == Echo(text=f"now:{i}")
            if name.startswith("big"):
                assert len(later_bufs) == 1
                assert bytes(later_bufs[0]) == big
            else:
                assert later_bufs == []

    asyncio.run(main())


def test_thread_reply_to_a_closed_connection_is_dropped(tmp_path: Path) -> None:
    held: list[tuple[Connection, int]] = []

    def later(conn: Connection, req: Echo, bufs: list[memoryview]) -> object:
        assert conn.enable_thread_writes()
        held.append((conn, conn.current_req_id))
        return REPLY_LATER

    async def main() -> None:
        server = Server(token=TOKEN, schema=SCHEMA, handlers={"t.later": later})
        address = await server.listen(f"unix:{tmp_path / 'sock'}")
        client = await connect(address, token=TOKEN, schema=SCHEMA, timeout=STEP_S)
        call = asyncio.ensure_future(client.call("t.later", Echo(text="x")))
        async with asyncio.timeout(STEP_S):
            while not held:
                await asyncio.sleep(0.01)
        client.close()
        conn, req_id = held[0]
        async with asyncio.timeout(STEP_S):
            await conn.closed
        # the requester is gone: replying is a no-op, not an error or a write to a reused fd
        await asyncio.to_thread(conn.reply_from_thread, req_id, Echo(text="late"))
        server.close()
        call.cancel()

    asyncio.run(main())
