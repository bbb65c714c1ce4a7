"""ConnectionPool: a connect that fails after its key was dropped fails cleanly."""

from __future__ import annotations

import asyncio

import pytest

from ember.rpc.connection import ConnectionPool, Schema
from ember.rpc.errors import RpcError


def test_a_failed_connect_whose_key_was_aborted_meanwhile_raises_its_own_error():
    async def scenario() -> None:
        # a server that accepts and never speaks: the handshake times out
        async def silent(reader, writer):
            await reader.read()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = ConnectionPool(
            token=b"t" * 16, schema=Schema({}), handlers={}, timeout_s=0.5
        )
        getting = asyncio.ensure_future(pool.get(b"k", f"tcp://127.0.0.1:{port}"))
        await asyncio.sleep(0)  # the connect has begun
        pool.abort(b"k")  # e.g. the peer's node was declared dead meanwhile
        with pytest.raises((RpcError, TimeoutError, OSError)):
            await getting  # before the fix: KeyError from the pool's own bookkeeping
        assert pool.cached(b"k") is None
        server.close()
        await server.wait_closed()

    asyncio.run(scenario())
