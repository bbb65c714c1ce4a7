"""``ember debug``: list the breakpoints waiting in this user's sessions, attach to one.

A breakpoint (``ember.util.pdb.set_trace`` in a task) leaves a record and a
Unix socket in ``<session>/debug/`` (``util/pdb.py``). :func:`breakpoints`
reads the records of every session in this user's runtime folder, dropping
those whose process is gone; :func:`attach` connects to one and relays lines
between the user and pdb until the task goes on (``c``) or ends (``q``).
Both are plain functions, so tests and other tools use them without a
terminal.
"""

from __future__ import annotations

import datetime
import glob
import json
import os
import select
import socket
import sys
import threading
from typing import IO, Any

import click

from ember.common import session
from ember.common.private_files import check_private_dir, read_private
from ember.util.pdb import DEBUG_DIR


def breakpoints(root: str | None = None) -> list[dict[str, Any]]:
    """The live breakpoints of this user's sessions on this machine, newest first."""
    root = root or session.runtime_dir_path()
    if not os.path.isdir(root):
        return []
    check_private_dir(root)
    found = []
    paths = [
        p
        for d in session.session_dirs(root)  # not session_latest: it names one of them
        for p in glob.glob(os.path.join(d, DEBUG_DIR, "*.json"))
    ]
    for path in paths:
        try:
            text = read_private(path)
            rec = json.loads(text) if text else None
        except (OSError, ValueError):
            continue
        if not isinstance(rec, dict) or not _alive(rec):
            continue
        found.append(rec)
    return sorted(found, key=lambda r: r.get("timestamp", 0), reverse=True)


def _alive(rec: dict[str, Any]) -> bool:
    try:
        os.kill(int(rec["pid"]), 0)
    except (KeyError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return False  # not ours
    return os.path.exists(str(rec.get("socket", "")))


def attach(
    target: dict[str, Any] | str,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
) -> None:
    """Talk to the breakpoint ``target`` (a record or its socket path) until it lets go.

    Lines read from ``stdin`` go to pdb, pdb's output goes to ``stdout``. It
    returns when the task continues or ends (pdb closes the connection), or
    when ``stdin`` ends (the task then continues).
    """
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    path = target if isinstance(target, str) else str(target["socket"])
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    closed = threading.Event()

    def relay_out() -> None:
        try:
            while data := sock.recv(65536):
                stdout.write(data.decode("utf-8", "replace"))
                stdout.flush()
        except OSError:
            pass
        finally:
            closed.set()

    reader = threading.Thread(target=relay_out, name="ember-debug-out", daemon=True)
    reader.start()
    try:
        fd = stdin.fileno()
    except (AttributeError, OSError, ValueError):
        fd = -1  # not a real file (a StringIO): read it as it comes
    try:
        while not closed.is_set():
            if fd >= 0 and not select.select([fd], [], [], 0.2)[0]:
                continue
            line = stdin.readline()
            if not line:
                break
            try:
                sock.sendall(line.encode())
            except OSError:
                break
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        reader.join()
    finally:
        sock.close()


def _table(recs: list[dict[str, Any]], verbose: bool) -> str:
    lines = []
    for i, r in enumerate(recs):
        when = datetime.datetime.fromtimestamp(r.get("timestamp", 0)).strftime(
            "%Y-%m-%d %H:%M:%S"
        )
        line = f"{i:>3}  {when}  {r.get('task', '')}  {r.get('filename')}:{r.get('lineno')}"
        if verbose:
            line += (
                f"  task={r.get('task_id', '')} actor={r.get('actor_id', '')} "
                f"worker={r.get('worker_id', '')} pid={r.get('pid')} id={r.get('id')}"
            )
        lines.append(line)
    return "\n".join(lines)


@click.command()
@click.argument("which", required=False)
@click.option(
    "--list", "list_only", is_flag=True, help="Print the breakpoints and exit."
)
@click.option("-v", "--verbose", is_flag=True, help="Show ids and pids too.")
def debug(which: str | None, list_only: bool, verbose: bool) -> None:
    """List the breakpoints tasks wait at on this machine, and attach to one.

    WHICH is an index of the list or a breakpoint id; without it, choose one.
    """
    interactive = which is None
    while True:
        recs = breakpoints()
        if list_only:
            click.echo(_table(recs, verbose) if recs else "No active breakpoints.")
            return
        chosen = _pick(recs, which)
        if chosen is None:
            if not interactive:
                raise click.ClickException(f"no active breakpoint {which!r}")
            if which is not None:
                click.echo(f"No active breakpoint {which!r}.")
            click.echo(
                "Active breakpoints:\n" + _table(recs, verbose)
                if recs
                else "No active breakpoints."
            )
            answer = click.prompt(
                "Enter a breakpoint index (Enter: refresh, q: quit)",
                default="",
                show_default=False,
            ).strip()
            if answer in ("q", "quit"):
                return
            which = answer or None
            continue
        click.echo(f"Attaching to breakpoint {chosen.get('id')} ({chosen.get('task')})")
        attach(chosen)
        return


def _pick(recs: list[dict[str, Any]], which: str | None) -> dict[str, Any] | None:
    if which is None:
        return None
    if which.isdigit() and int(which) < len(recs):
        return recs[int(which)]
    for r in recs:
        if r.get("id") == which:
            return r
    return None
