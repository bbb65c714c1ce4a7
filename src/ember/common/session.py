"""Session folders, tokens and the record of the cluster running on this machine."""

from __future__ import annotations

import datetime
import json
import os
import secrets
import tempfile
from typing import Any

TOKEN_ENV = "EMBER_AUTH_TOKEN"
ADDRESS_ENV = "EMBER_ADDRESS"


def root_dir() -> str:
    """The folder holding session folders (``$TMPDIR/ember``)."""
    return os.path.join(tempfile.gettempdir(), "ember")


def new_session_dir() -> str:
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    path = os.path.join(root_dir(), f"session_{stamp}_{os.getpid()}")
    for sub in ("sockets", "logs"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    return path


def new_token() -> str:
    return secrets.token_hex(32)


def user_dir() -> str:
    """The user's ember folder (``~/.ember``)."""
    return os.path.join(os.path.expanduser("~"), ".ember")


def cluster_record_path() -> str:
    return os.path.join(root_dir(), "current_cluster.json")


def write_cluster_record(record: dict[str, Any]) -> None:
    """Record the cluster on this machine (mode 0600: it holds the token)."""
    os.makedirs(root_dir(), exist_ok=True)
    path = cluster_record_path()
    tmp = path + f".{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(record, f)
    os.replace(tmp, path)


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
