"""``ember stop``: stop the daemons ``ember start`` left running on this machine.

The daemons are found through the session records ``ember start`` wrote
(pid plus process start time), never by process name, so another user's
daemons and an embedded local cluster are left alone.
"""

from __future__ import annotations

import click

from ember.cli.autoscaler_proc import stop_autoscalers
from ember.cli.daemons import (
    STOP_GRACE_S,
    remove_session_leftovers,
    stop_session_daemons,
)
from ember.common import session


def stop_sessions(*, force: bool, grace_s: float) -> list[tuple[str, list[dict]]]:
    """Stop every recorded session of this user on this machine; newest first."""
    out = []
    records = session.list_session_records()
    # Autoscalers first, or one would start nodes again while the others stop.
    autoscalers = [
        p
        for r in records
        for p in r.get("processes", [])
        if p.get("name") == "autoscaler"
    ]
    stop_autoscalers(autoscalers, grace_s=0 if force else grace_s)
    for rec in reversed(records):
        session_dir = str(rec.get("session_dir", ""))
        stopped = stop_session_daemons(
            list(rec.get("processes", [])), force=force, grace_s=grace_s
        )
        session.remove_session_record(session_dir)
        session.remove_cluster_record(session_dir)
        if rec.get("head") and rec.get("control_address"):
            session.remove_token(str(rec["control_address"]))
        remove_session_leftovers(session_dir)
        out.append((session_dir, stopped))
    return out


@click.command()
@click.option(
    "-f", "--force", is_flag=True, help="Send SIGKILL at once instead of SIGTERM."
)
@click.option(
    "-g",
    "--grace-period",
    type=click.FloatRange(min=0),
    default=STOP_GRACE_S,
    show_default=True,
    help="Seconds to wait after SIGTERM before sending SIGKILL.",
)
def stop(force: bool, grace_period: float) -> None:
    """Stop the ember daemons this user started on this machine with ``ember start``.

    Drivers connected to them see the cluster go away.  Embedded local
    clusters (``ember.init()`` without an address) are not affected.
    """
    results = stop_sessions(force=force, grace_s=grace_period)
    count = 0
    for session_dir, stopped in results:
        for p in stopped:
            click.echo(f"Stopped the {p['name']} (pid {p['pid']}) of {session_dir}")
            count += 1
    if count == 0:
        click.echo("Did not find any running ember daemons started by this user.")
    else:
        click.echo(f"Stopped {count} ember daemon(s).")
