"""Which job server a client talks to, and the token it shows there.

The server: ``EMBER_API_SERVER_ADDRESS`` / ``RAY_API_SERVER_ADDRESS`` first,
then an ``http(s)://`` URL in ``EMBER_ADDRESS`` / ``RAY_ADDRESS`` (as Ray,
the environment wins over the argument), then the argument; an
``http(s)://`` URL is taken as it is. Otherwise (None, ``"auto"``, a control
service's ``HOST:PORT``) the dashboard of the cluster recorded on this
machine: ``<session>/dashboard_url`` (``host:port``, written by the dashboard process),
else the ``dashboard`` ``HOST:PORT`` its record names; a ``HOST:PORT`` of
another cluster gets ``http://HOST:8265``.

The token (sent as ``Authorization: Bearer``), in order: an Authorization
header the caller gave, ``EMBER_AUTH_TOKEN``, the token of the cluster
recorded on this machine, that cluster's token file, ``~/.ember/auth_token``.
:func:`find_token` also says where it looked, for the 401 message.
"""

from __future__ import annotations

import os
from typing import Any

from ember.common import session

DEFAULT_DASHBOARD_PORT = 8265
_SERVER_VARS = ("EMBER_API_SERVER_ADDRESS", "RAY_API_SERVER_ADDRESS")
_ADDRESS_VARS = ("EMBER_ADDRESS", "RAY_ADDRESS")


def _record() -> dict[str, Any] | None:
    try:
        rec = session.read_cluster_record()
    except OSError:
        return None
    return rec if isinstance(rec, dict) else None


def recorded_dashboard_url(rec: dict[str, Any] | None = None) -> str | None:
    """The dashboard URL of the cluster recorded on this machine, if any."""
    rec = _record() if rec is None else rec
    if not rec:
        return None
    session_dir = rec.get("session_dir")
    if isinstance(session_dir, str) and session_dir:
        try:
            with open(os.path.join(session_dir, "dashboard_url")) as f:
                url = f.read().strip()
            if url:  # host:port as Ray's dashboard_url, or a URL
                return _as_url(url)
        except OSError:
            pass
    for key in ("dashboard_url", "dashboard"):
        value = rec.get(key)
        if isinstance(value, str) and value:
            return _as_url(value)
    return None


def _as_url(value: str) -> str:
    value = value.strip().rstrip("/")
    return value if "://" in value else f"http://{value}"


def server_url(address: str | None) -> str:
    """The job server's URL for ``address`` (see the module docstring).

    Raises:
        ConnectionError: no address given and no cluster recorded here.
        ValueError: an address of a kind ember's job server cannot be reached by.
    """
    for var in _SERVER_VARS:
        if os.environ.get(var):
            address = os.environ[var]
            break
    else:
        for var in _ADDRESS_VARS:
            value = os.environ.get(var, "")
            if value.startswith(("http://", "https://")):
                address = value
                break
    if address and address.startswith(("http://", "https://")):
        return address.rstrip("/")
    if address and address.startswith("ray://"):
        raise ValueError(
            f"{address}: ember has no Ray Client server; give the dashboard's "
            "http://HOST:PORT (ember start --head prints it)"
        )
    rec = _record()
    here = str(rec.get("control_address", "")).removeprefix("tcp:") if rec else ""
    wanted = (address or "").removeprefix("ember://").removeprefix("tcp:")
    if wanted in ("", "auto") or wanted == here:
        url = recorded_dashboard_url(rec)
        if url:
            return url
        raise ConnectionError(
            "No ember cluster is recorded on this machine to find its dashboard; "
            "pass address='http://HOST:8265' (the dashboard's URL) or set "
            "EMBER_ADDRESS to it."
        )
    host = wanted.rpartition(":")[0] or wanted
    return f"http://{host}:{DEFAULT_DASHBOARD_PORT}"


def find_token(headers: dict[str, Any] | None) -> tuple[str, list[str]]:
    """``(token, places looked)``; token "" if the caller's headers carry one
    already or none was found."""
    looked = ["an Authorization header"]
    if any(str(k).lower() == "authorization" for k in (headers or {})):
        return "", looked
    looked.append(session.TOKEN_ENV)
    if os.environ.get(session.TOKEN_ENV):
        return os.environ[session.TOKEN_ENV], looked
    rec = _record()
    looked.append(session.cluster_record_path())
    if rec and isinstance(rec.get("token"), str) and rec["token"]:
        return rec["token"], looked
    address = str(rec.get("control_address", "")) if rec else ""
    paths = [session.token_path(address)] if address else []
    paths.append(session.token_path())
    looked.extend(paths)
    return session.read_token(address or None), looked
