"""Finding a cluster (address, token) and asking its control service over RPC."""

from __future__ import annotations

import asyncio
import os

import click

from ember.common import session, tls
from ember.common.config import Config
from ember.protocol.messages import SCHEMA, Empty, GetClusterStatusReply
from ember.rpc.connection import connect
from ember.rpc.errors import AuthenticationError, RpcError, TlsRequiredError

#: connecting plus the handshake (``EMBER_CONNECT_TIMEOUT_S``, 10 s by default)
CONNECT_TIMEOUT_S = Config.from_env().connect_timeout_s

TOKEN_HELP = (
    "The head node printed where its token file is when it started ('ember start "
    "--head'; ~/.ember/clusters/HOST_PORT/auth_token there): copy that file to the "
    "same path on this machine, or pass it with --token-file, or set EMBER_AUTH_TOKEN."
)
NO_TOKEN_HELP = "No cluster token. " + TOKEN_HELP
TOKEN_ON_ARGV_WARNING = (
    "Warning: --token puts the cluster token on the command line, where every user "
    "of this machine can read it (ps, /proc). Set EMBER_AUTH_TOKEN or pass "
    "--token-file instead."
)


def control_address(address: str | None) -> str:
    """``tcp:HOST:PORT`` for ``HOST:PORT``; if None, the cluster recorded on this
    machine (``ember start``'s, or a driver's embedded cluster: ``unix:``)."""
    if not address:
        address = os.environ.get(session.ADDRESS_ENV, "")
    if not address or address == "auto":
        rec = session.read_cluster_record()
        if rec is None:
            raise click.ClickException(
                "No ember cluster is running on this machine (no cluster record). Start one "
                "with 'ember start --head', or pass --address HOST:PORT."
            )
        dead = session.dead_processes(rec)
        if dead:
            gone = ", ".join(f"{e.get('name')} (pid {e.get('pid')})" for e in dead)
            raise click.ClickException(
                f"The cluster recorded on this machine ({session.cluster_record_path()}) "
                f"is not running any more: {gone} exited. Start one with 'ember start "
                "--head', or pass --address HOST:PORT."
            )
        return str(rec["control_address"])
    address = address.removeprefix("ember://").removeprefix("ray://")
    if address.startswith(("tcp:", "unix:")):
        return address
    if ":" not in address:
        raise click.BadParameter(
            f"{address!r} is not HOST:PORT", param_hint="--address"
        )
    return f"tcp:{address}"


def token_for(address: str, explicit: str | None, token_file: str | None = None) -> str:
    """The token for the cluster at ``address``, in this order: ``explicit``,
    ``EMBER_AUTH_TOKEN``, ``token_file``, the cluster record's (if it is that
    cluster), ``~/.ember/clusters/HOST_PORT/auth_token``, ``~/.ember/auth_token``.
    """
    token = explicit or os.environ.get(session.TOKEN_ENV, "")
    if token:
        return token
    if token_file:
        try:
            token = session.read_token_file(token_file)
        except OSError as exc:
            raise click.ClickException(
                f"Cannot read the token file {token_file}: {exc}"
            ) from exc
        if not token:
            raise click.ClickException(f"The token file {token_file} is empty.")
        return token
    rec = session.read_cluster_record()
    if rec is not None and rec.get("control_address") == address and rec.get("token"):
        return str(rec["token"])
    token = session.read_token(address)
    if not token:
        raise click.ClickException(NO_TOKEN_HELP)
    return token


async def _status(address: str, token: str) -> GetClusterStatusReply:
    conn = await connect(
        address, token=token.encode(), schema=SCHEMA, timeout=CONNECT_TIMEOUT_S
    )
    try:
        reply, _ = await conn.call(
            "control.get_cluster_status", Empty(), timeout=CONNECT_TIMEOUT_S
        )
    finally:
        conn.close()
    assert isinstance(reply, GetClusterStatusReply)
    return reply


def get_status(
    address: str, token: str, *, find_tls: bool = True
) -> GetClusterStatusReply:
    """The control service's view of the cluster; a clear ClickException on failure.

    With ``find_tls``, TLS is used if the cluster's TLS record here says so
    (:func:`ember.common.tls.use_for_cluster`); else as this process is set up.
    """
    if find_tls:
        tls.use_for_cluster(address)
    try:
        return asyncio.run(_status(address, token))
    except AuthenticationError as exc:
        raise click.ClickException(
            f"The cluster at {address.removeprefix('tcp:')} refused this cluster token "
            "(wrong or missing). " + TOKEN_HELP
        ) from exc
    except TlsRequiredError as exc:
        raise click.ClickException(
            f"The cluster at {address.removeprefix('tcp:')} uses TLS: start this node "
            "with --tls (the files come from 'ember tls init'; see 'ember tls init "
            "--help')."
        ) from exc
    except (RpcError, OSError) as exc:
        raise click.ClickException(
            f"Cannot reach the ember control service at {address.removeprefix('tcp:')}: "
            f"{exc}. Is 'ember start --head' running there, and is the port open?"
        ) from exc
