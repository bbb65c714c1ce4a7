"""Session folders, tokens and the records of the clusters running on this machine.

Three kinds of record, all private to the user (files mode 0600):

- the **cluster record** (``$TMPDIR/ember/current_cluster.json``): the control
  address, token and session folder of the cluster on this machine, read by
  ``init(address="auto")`` and ``ember status``;
- the **token file** (``~/.ember/auth_token``, folder 0700): the cluster token
  written by ``ember start --head`` and read by joining nodes and drivers;
- **session records** (``<session>/pids.json``, indexed under
  ``~/.ember/sessions/<hostname>/``): the daemons ``ember start`` left running,
  so that ``ember stop`` finds them by pid and start time, never by name.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import socket
import tempfile
from typing import Any

TOKEN_ENV = "EMBER_AUTH_TOKEN"
ADDRESS_ENV = "EMBER_ADDRESS"
PIDS_FILE = "pids.json"


def root_dir(temp_dir: str | None = None) -> str:
    """The folder holding session folders (``$TMPDIR/ember`` unless ``temp_dir``)."""
    return temp_dir or os.path.join(tempfile.gettempdir(), "ember")


def new_session_dir(temp_dir: str | None = None, tag: str = "") -> str:
    """A new ``session_<time>[_<tag>]_<pid>`` folder with ``sockets/`` and ``logs/``."""
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    if tag:
        stamp += f"_{tag}"
    path = os.path.join(root_dir(temp_dir), f"session_{stamp}_{os.getpid()}")
    for sub in ("sockets", "logs"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    return path


def new_token() -> str:
    return secrets.token_hex(32)


def user_dir() -> str:
    """The user's ember folder (``~/.ember``)."""
    return os.path.join(os.path.expanduser("~"), ".ember")


def _write_private(path: str, text: str) -> None:
    """Write ``text`` atomically to a file only this user can read."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _ensure_user_dir(*parts: str) -> str:
    path = user_dir()
    for part in ("", *parts):
        path = os.path.join(path, part) if part else path
        os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(user_dir(), 0o700)
    return path


# -- the cluster token --------------------------------------------------------------
def token_path() -> str:
    return os.path.join(user_dir(), "auth_token")


def write_token(token: str) -> str:
    """Store the cluster token in ``~/.ember/auth_token`` (0600); return the path."""
    _ensure_user_dir()
    _write_private(token_path(), token + "\n")
    return token_path()


def read_token() -> str:
    """The token in ``~/.ember/auth_token``, or "" if there is none."""
    try:
        with open(token_path()) as f:
            return f.read().strip()
    except OSError:
        return ""


def find_token(explicit: str | None = None) -> str:
    """The token to use: ``explicit``, else ``EMBER_AUTH_TOKEN``, else the token file."""
    return explicit or os.environ.get(TOKEN_ENV, "") or read_token()


# -- the cluster on this machine ------------------------------------------------------
def cluster_record_path() -> str:
    return os.path.join(root_dir(), "current_cluster.json")


def write_cluster_record(record: dict[str, Any]) -> None:
    """Record the cluster on this machine (mode 0600: it holds the token)."""
    os.makedirs(root_dir(), exist_ok=True)
    _write_private(cluster_record_path(), json.dumps(record))


def read_cluster_record() -> dict[str, Any] | None:
    try:
        with open(cluster_record_path()) as f:
            rec: dict[str, Any] = json.load(f)
    except (OSError, ValueError):
        return None
    return rec


def remove_cluster_record(session_dir: str) -> None:
    rec = read_cluster_record()
    if rec is not None and rec.get("session_dir") == session_dir:
        try:
            os.unlink(cluster_record_path())
        except FileNotFoundError:
            pass


# -- daemons started by `ember start` ---------------------------------------------------
def _index_dir() -> str:
    return os.path.join(user_dir(), "sessions", socket.gethostname())


def _index_path(session_dir: str) -> str:
    name = os.path.basename(session_dir.rstrip("/"))
    return os.path.join(_index_dir(), name + ".json")


def write_session_record(session_dir: str, record: dict[str, Any]) -> None:
    """Record the daemons of a session: ``<session>/pids.json`` plus the user's index.

    ``record`` holds at least ``session_dir`` and ``processes``: a list of
    ``{"name", "pid", "create_time"}`` (``create_time`` guards against pid reuse).
    """
    text = json.dumps(record, indent=1)
    _write_private(os.path.join(session_dir, PIDS_FILE), text)
    _ensure_user_dir("sessions", socket.gethostname())
    _write_private(_index_path(session_dir), text)


def list_session_records() -> list[dict[str, Any]]:
    """Session records of this user on this machine, oldest first."""
    try:
        names = sorted(os.listdir(_index_dir()))
    except OSError:
        return []
    out = []
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(_index_dir(), name)) as f:
                out.append(json.load(f))
        except (OSError, ValueError):
            continue
    return out


def remove_session_record(session_dir: str) -> None:
    for path in (_index_path(session_dir), os.path.join(session_dir, PIDS_FILE)):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
