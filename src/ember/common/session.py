"""Session folders, tokens and the records of the clusters running on this machine.

Everything lives in folders private to the user (0700, checked on every use:
:mod:`ember.common.private_files`), and every file is written atomically with
mode 0600:

- the **runtime folder** (``$XDG_RUNTIME_DIR/ember`` when that is set and
  private to the user, else ``$TMPDIR/ember-<uid>``): the session folders and
  the cluster record.  One per user, so that users never share it and nobody
  can create it for somebody else (ember refuses a folder it does not own);
- the **cluster record** (``<runtime folder>/current_cluster.json``): the
  control address, token and session folder of the cluster on this machine,
  read by ``init(address="auto")`` and ``ember status``;
- **token files** (``~/.ember/clusters/<host>_<port>/auth_token``): the token
  of the cluster whose control service listens at ``host:port``, written by
  ``ember start --head`` and found by ``ember start --address host:port``.
  ``~/.ember/auth_token`` is still read as the last resort (a token copied
  there by hand);
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
import stat
import tempfile
from typing import Any

from ember.common.private_files import (
    check_private_dir,
    ensure_private_dir,
    ensure_private_dirs,
    read_private,
    write_private,
)

TOKEN_ENV = "EMBER_AUTH_TOKEN"
ADDRESS_ENV = "EMBER_ADDRESS"
PIDS_FILE = "pids.json"
TOKEN_FILE = "auth_token"


def _xdg_runtime_dir() -> str | None:
    """``$XDG_RUNTIME_DIR`` if it is set and a 0700 folder of this user."""
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if not xdg:
        return None
    try:
        st = os.lstat(xdg)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        return None
    return xdg


def runtime_dir_path(temp_dir: str | None = None) -> str:
    """Where this user's runtime folder is (nothing is created or checked)."""
    if temp_dir:
        return os.path.join(os.path.abspath(temp_dir), f"ember-{os.geteuid()}")
    xdg = _xdg_runtime_dir()
    if xdg is not None:
        return os.path.join(xdg, "ember")
    return os.path.join(tempfile.gettempdir(), f"ember-{os.geteuid()}")


def root_dir(temp_dir: str | None = None) -> str:
    """This user's runtime folder, created 0700 or checked (:class:`UnsafePathError`).

    ``temp_dir`` (``ember start --temp-dir``) replaces ``$TMPDIR``: the folder
    is ``<temp_dir>/ember-<uid>``.
    """
    if temp_dir:
        os.makedirs(temp_dir, exist_ok=True)
    return ensure_private_dir(runtime_dir_path(temp_dir))


def new_session_dir(temp_dir: str | None = None, tag: str = "") -> str:
    """A new ``session_<time>[_<tag>]_<pid>`` folder with ``sockets/`` and ``logs/`` (0700)."""
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    if tag:
        stamp += f"_{tag}"
    path = ensure_private_dir(
        os.path.join(root_dir(temp_dir), f"session_{stamp}_{os.getpid()}")
    )
    for sub in ("sockets", "logs"):
        ensure_private_dir(os.path.join(path, sub))
    return path


def new_token() -> str:
    return secrets.token_hex(32)


def user_dir() -> str:
    """The user's ember folder (``~/.ember``)."""
    return os.path.join(os.path.expanduser("~"), ".ember")


def _ensure_user_dir(*parts: str) -> str:
    return ensure_private_dirs(user_dir(), *parts)


# -- cluster tokens -------------------------------------------------------------------
def token_path(address: str | None = None) -> str:
    """The token file of the cluster at ``address`` (``~/.ember/auth_token`` if None)."""
    if not address:
        return os.path.join(user_dir(), TOKEN_FILE)
    return os.path.join(user_dir(), "clusters", cluster_key(address), TOKEN_FILE)


def cluster_key(address: str) -> str:
    """``host_port`` for ``[tcp:]host:port``: the name of a cluster's token folder."""
    host, _, port = address.removeprefix("tcp:").rpartition(":")
    safe = "".join(c if c.isalnum() or c in ".-" else "-" for c in host.strip("[]"))
    return f"{safe}_{port}"


def write_token(token: str, address: str) -> str:
    """Store the token of the cluster at ``address`` (file 0600, folders 0700)."""
    _ensure_user_dir("clusters", cluster_key(address))
    path = token_path(address)
    write_private(path, token + "\n")
    return path


def remove_token(address: str) -> None:
    path = token_path(address)
    try:
        os.unlink(path)
        os.rmdir(os.path.dirname(path))
    except OSError:
        pass


def read_token(address: str | None = None) -> str:
    """The token file of the cluster at ``address``, else ``~/.ember/auth_token``; or ""."""
    for path in (token_path(address), token_path()) if address else (token_path(),):
        try:
            text = read_private(path)
        except OSError:
            continue
        if text and text.strip():
            return text.strip()
    return ""


def read_token_file(path: str) -> str:
    """The token in a file the user named (``--token-file``)."""
    with open(os.path.expanduser(path)) as f:
        return f.read().strip()


def find_token(explicit: str | None = None, address: str | None = None) -> str:
    """``explicit``, else ``EMBER_AUTH_TOKEN``, else the token file (of ``address``)."""
    return explicit or os.environ.get(TOKEN_ENV, "") or read_token(address)


# -- the cluster on this machine ------------------------------------------------------
def cluster_record_path() -> str:
    return os.path.join(runtime_dir_path(), "current_cluster.json")


def write_cluster_record(record: dict[str, Any]) -> None:
    """Record the cluster on this machine (mode 0600: it holds the token)."""
    root_dir()
    write_private(cluster_record_path(), json.dumps(record))


def read_cluster_record() -> dict[str, Any] | None:
    """The cluster record, None if there is none (:class:`UnsafePathError` if unsafe)."""
    path = cluster_record_path()
    try:
        check_private_dir(os.path.dirname(path))
    except FileNotFoundError:
        return None
    text = read_private(path)
    if text is None:
        return None
    try:
        rec: dict[str, Any] = json.loads(text)
    except ValueError:
        return None
    return rec


def remove_cluster_record(session_dir: str) -> None:
    try:
        rec = read_cluster_record()
    except OSError:
        return
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
    write_private(os.path.join(session_dir, PIDS_FILE), text)
    _ensure_user_dir("sessions", socket.gethostname())
    write_private(_index_path(session_dir), text)


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
