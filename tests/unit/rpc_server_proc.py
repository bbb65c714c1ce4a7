"""A bare RPC server process for the tests: serves ``test.echo`` until stdin closes.

Usage: ``python rpc_server_proc.py NOFILE`` (NOFILE: a soft descriptor limit, or
0 to keep it).  Limits come from the ``EMBER_RPC_*`` environment.  Prints its
TCP address on one line once it listens.
"""

from __future__ import annotations

import asyncio
import resource
import sys
from typing import Any

import msgspec

from ember.common.config import Config
from ember.rpc.connection import Connection, Schema, Server
from ember.rpc.limits import Limits

TOKEN = b"proc-token"


class Echo(msgspec.Struct, array_like=True):
    text: str


def echo(conn: Connection, req: Echo, bufs: Any) -> Echo:
    return Echo(text=req.text.upper())


async def main(nofile: int) -> None:
    if nofile:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))
    schema = Schema(
        {"test.echo": (Echo, Echo)}, {}, Limits.from_config(Config.from_env())
    )
    server = Server(token=TOKEN, schema=schema, handlers={"test.echo": echo})
    address = await server.listen("tcp:127.0.0.1:0")
    print(address, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the test closes stdin
    server.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
