"""Session folders, tokens and the records of the clusters running on this machine.

Everything lives in folders private to the user (0700, checked on every use:
:mod:`ember.common.private_files`), and every file is written atomically with
mode 0600:

- the **runtime folder** (``$XDG_RUNTIME_DIR/ember`` when that is set and
  private to the user, else ``$TMPDIR/ember-<uid>``): the session folders and
  the cluster record.  One per user, so that users never share it and nobody
  can create it for somebody else (ember refuses a folder it does not own).
  ``--temp-dir DIR`` (``init(_temp_dir=DIR)``) puts the session folders in
  ``DIR`` itself instead, created 0700 or checked the same way (the cluster
  record stays in the runtime folder, where ``init()`` looks for it);
- **session_latest** (``<root>/session_latest``, root = the runtime folder or
  ``--temp-dir``): a symlink to the newest session folder, as Ray's, so that
  ``<root>/session_latest/metrics/prometheus/prometheus.yml`` names the
  files of the cluster started last;
- the **cluster record** (``<runtime folder>/current_cluster.json``): the
  control address, token, session folder and processes (pid plus start
  time) of the cluster on this machine: the last one ``ember start`` started,
  or the embedded cluster of a driver's plain ``init()`` when no live cluster
  was recorded.  Read by ``init()``, ``init(address="auto")`` and ``ember
  status``; a record whose processes are gone is stale (:func:`dead_processes`);
- **token files** (``~/.ember/clusters/<host>_<port>/auth_token``): the token
  of the cluster whose control service listens at ``host:port``, written by
  ``ember start --head`` and found by ``ember start --address host:port``.
  ``~/.ember/auth_token`` is still read as the last resort (a token copied
  there by hand);
- **TLS records** (``~/.ember/clusters/<host>_<port>/tls.json``): the
  certificate, key and CA files ``ember start --tls`` gave the daemons it
  started for that cluster, found by drivers and ``ember status`` so that
  they speak TLS to it too;
- **session records** (``<session>/pids.json``, indexed under
  ``~/.ember/sessions/<hostname>/``): the daemons ``ember start`` left running,
  so that ``ember stop`` finds them by pid and start time, never by name.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import secrets
import socket
import stat
import tempfile
from typing import Any

import psutil

from ember.common.private_files import (
    check_private_dir,
    ensure_private_dir,
    ensure_private_dirs,
    read_private,
    write_private,
)

logger = logging.getLogger(__name__)

TOKEN_ENV = "EMBER_AUTH_TOKEN"
ADDRESS_ENV = "EMBER_ADDRESS"
PIDS_FILE = "pids.json"
TOKEN_FILE = "auth_token"
TLS_FILE = "tls.json"
#: the link to the newest session folder (Ray's name)
SESSION_LATEST = "session_latest"


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
    """Where this user's session folders go (nothing is created or checked).

    ``temp_dir`` (``ember start --temp-dir``, ``init(_temp_dir=...)``) is that
    folder itself, as Ray's ``--temp-dir``.
    """
    if temp_dir:
        return os.path.abspath(os.path.expanduser(temp_dir))
    xdg = _xdg_runtime_dir()
    if xdg is not None:
        return os.path.join(xdg, "ember")
    return os.path.join(tempfile.gettempdir(), f"ember-{os.geteuid()}")


def root_dir(temp_dir: str | None = None) -> str:
    """The folder of the session folders, created 0700 or checked (:class:`UnsafePathError`).

    With ``temp_dir`` its parents are created if missing (mode 0755, as
    ``mkdir -p``); the folder itself must be this user's and 0700: a folder
    another user owns, or one group or others can enter, is refused.
    """
    path = runtime_dir_path(temp_dir)
    if temp_dir:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    return ensure_private_dir(path)


def new_session_dir(
    temp_dir: str | None = None, tag: str = "", *, latest: bool = True
) -> str:
    """A new ``session_<time>[_<tag>]_<pid>`` folder with ``sockets/`` and ``logs/`` (0700).

    ``latest``: point ``<root>/session_latest`` at it (:func:`link_latest`).
    """
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    if tag:
        stamp += f"_{tag}"
    path = ensure_private_dir(
        os.path.join(root_dir(temp_dir), f"session_{stamp}_{os.getpid()}")
    )
    for sub in ("sockets", "logs"):
        ensure_private_dir(os.path.join(path, sub))
    if latest:
        link_latest(path)
    return path


def link_latest(session_dir: str, *, unless_live_head: bool = False) -> bool:
    """Point ``session_latest`` beside ``session_dir`` at it; whether it did.

    The link is replaced atomically (a new link renamed over the old one), so
    a reader sees the old session or the new one, never none.  Its target is
    the folder's name (relative), so the root can be moved.  Something other
    than a symlink at that name is left alone (False).  ``unless_live_head``
    (a node joining a cluster): keep a link that names the session of a head
    still running here, whose metrics files the link is for.
    """
    root, name = os.path.split(os.path.abspath(session_dir).rstrip("/"))
    link = os.path.join(root, SESSION_LATEST)
    if os.path.lexists(link) and not os.path.islink(link):
        return False
    if unless_live_head and _names_live_head(link):
        return False
    tmp = os.path.join(root, f".{SESSION_LATEST}.{secrets.token_hex(8)}")
    try:
        os.symlink(name, tmp)
        try:
            os.replace(tmp, link)
        except OSError:
            os.unlink(tmp)
            raise
    except OSError as exc:  # a file system without symlinks: the session still works
        logger.warning("could not point %s at %s: %s", link, name, exc)
        return False
    return True


def _names_live_head(link: str) -> bool:
    try:
        text = read_private(os.path.join(link, PIDS_FILE))
        rec = json.loads(text) if text else None
    except (OSError, ValueError):
        return False
    return (
        isinstance(rec, dict)
        and bool(rec.get("head"))
        and bool(rec.get("processes"))
        and not dead_processes(rec)
    )


def session_dirs(root: str) -> list[str]:
    """The session folders in ``root`` (not the ``session_latest`` link), by name."""
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    return [
        os.path.join(root, n)
        for n in names
        if n.startswith("session_")
        and n != SESSION_LATEST
        and not os.path.islink(os.path.join(root, n))
    ]


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
    """Forget the cluster at ``address``: its token and its TLS record."""
    path = token_path(address)
    for name in (TOKEN_FILE, TLS_FILE):
        try:
            os.unlink(os.path.join(os.path.dirname(path), name))
        except OSError:
            pass
    try:
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


# -- TLS records ---------------------------------------------------------------------
def tls_record_path(address: str) -> str:
    return os.path.join(user_dir(), "clusters", cluster_key(address), TLS_FILE)


def write_tls_record(address: str, files: dict[str, str] | None) -> None:
    """Record the TLS files of the cluster at ``address`` (None: it uses no TLS)."""
    if files is None:
        try:
            os.unlink(tls_record_path(address))
        except FileNotFoundError:
            pass
        return
    _ensure_user_dir("clusters", cluster_key(address))
    write_private(tls_record_path(address), json.dumps(files))


def read_tls_record(address: str) -> dict[str, str] | None:
    """The TLS files recorded for the cluster at ``address``, None if there are none."""
    try:
        text = read_private(tls_record_path(address))
    except OSError:
        return None
    if not text:
        return None
    try:
        rec = json.loads(text)
    except ValueError:
        return None
    if not isinstance(rec, dict) or not all(
        isinstance(rec.get(k), str) for k in ("cert", "key", "ca")
    ):
        return None
    return {k: rec[k] for k in ("cert", "key", "ca")}


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


def process_entry(name: str, pid: int) -> dict[str, Any]:
    """``{"name", "pid", "create_time"}`` of a running process (for records)."""
    try:
        created = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        created = 0.0
    return {"name": name, "pid": pid, "create_time": created}


def _runs(entry: dict[str, Any]) -> bool:
    """Whether the process a record names still runs (same pid, same start time)."""
    try:
        p = psutil.Process(int(entry["pid"]))
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        created = float(entry.get("create_time") or 0.0)
        return not created or abs(p.create_time() - created) < 1.0
    except (psutil.NoSuchProcess, KeyError, TypeError, ValueError):
        return False
    except psutil.AccessDenied:
        return True  # it exists; we may not look at it


def dead_processes(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The processes of a cluster record that no longer run ([] if all do).

    A record names its processes in ``processes``; older records only the
    ``pid`` of one of them; a record naming none is taken as live.
    """
    entries = record.get("processes")
    if not isinstance(entries, list):
        entries = [{"name": "process", "pid": record["pid"]}] if "pid" in record else []
    return [e for e in entries if isinstance(e, dict) and not _runs(e)]


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
