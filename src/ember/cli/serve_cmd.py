"""``ember serve``: Ray's ``serve`` CLI, run as a driver process of its own.

The commands (``run``, ``deploy``, ``status``, ``shutdown``) live in
``ember.serve.scripts``; this passes the arguments to ``python -m ember.serve.scripts``
so the command line itself never becomes a driver (tools talk to the cluster from
processes they start, STYLE.md §3).
"""

from __future__ import annotations

import subprocess
import sys

import click


@click.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def serve(args: tuple[str, ...]) -> None:
    """Run and manage Serve applications (run, deploy, status, shutdown; -h for help)."""
    proc = subprocess.Popen([sys.executable, "-m", "ember.serve.scripts", *args])
    while True:
        try:
            raise SystemExit(proc.wait())
        except KeyboardInterrupt:
            continue  # the driver got the same SIGINT and shuts Serve down itself
