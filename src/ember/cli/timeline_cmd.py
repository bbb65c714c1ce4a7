"""``ember timeline``: write the cluster's task attempts as a Chrome trace file.

As Ray's ``ray timeline``: the JSON opens in chrome://tracing or
https://ui.perfetto.dev, one bar per task attempt, one row per worker,
grouped by node (``ember.util.state.timeline``).
"""

from __future__ import annotations

import datetime
import json
import os

import click

from ember.util.state.exception import RayStateApiException
from ember.util.state.timeline import fetch_trace


@click.command()
@click.option(
    "--output",
    "-o",
    default=None,
    type=click.Path(dir_okay=False, writable=True),
    help="The file to write (default: ./ember-timeline-<date>.json).",
)
@click.option(
    "--address",
    default=None,
    help="HOST:PORT of the control service (default: the cluster on this machine).",
)
def timeline(output: str | None, address: str | None) -> None:
    """Write the task timeline of the cluster as Chrome trace JSON."""
    try:
        trace = fetch_trace(address)
    except RayStateApiException as exc:
        raise click.ClickException(str(exc)) from exc
    if output is None:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        output = os.path.abspath(f"ember-timeline-{stamp}.json")
    with open(output, "w", encoding="utf-8") as f:
        json.dump(trace, f)
    bars = sum(1 for e in trace if e.get("ph") == "X")
    click.echo(
        f"Wrote {bars} task attempts to {output}: open it in chrome://tracing or "
        "https://ui.perfetto.dev."
    )
