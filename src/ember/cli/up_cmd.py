"""``ember up`` / ``ember down``: a cluster from a cluster config, with its autoscaler.

``ember up cluster.yaml`` starts the head here (``ember start --head`` with
the resources of ``head_node_type``) and the autoscaler beside it, which
then starts and stops worker nodes through the config's provider.
``ember down cluster.yaml`` stops the autoscaler, the nodes its provider
started and the head, found by the config's ``cluster_name`` in this
user's session records.
"""

from __future__ import annotations

import json
from typing import Any

import click

from ember.autoscaler.config import ClusterConfig
from ember.autoscaler.providers import make_provider
from ember.cli.autoscaler_proc import (
    AUTOSCALER_NAME,
    read_config,
    state_dir,
    stop_autoscalers,
)
from ember.cli.daemons import (
    STOP_GRACE_S,
    remove_session_leftovers,
    stop_session_daemons,
)
from ember.cli.start import DEFAULT_PORT, start
from ember.common import session


def head_options(config: ClusterConfig) -> dict[str, Any]:
    """``ember start`` options for the head node type's resources."""
    r = dict(config.head.resources)
    opts: dict[str, Any] = {}
    if "CPU" in r:
        opts["num_cpus"] = int(r.pop("CPU"))
    if "GPU" in r:
        opts["num_gpus"] = int(r.pop("GPU"))
    if "object_store_memory" in r:
        opts["object_store_memory"] = int(r.pop("object_store_memory"))
    r.pop("memory", None)
    if r:
        opts["resources"] = json.dumps(r)
    return opts


def running_heads(cluster_name: str) -> list[dict[str, Any]]:
    """This user's recorded heads started for ``cluster_name``."""
    return [
        rec
        for rec in session.list_session_records()
        if rec.get("head") and rec.get("cluster_name") == cluster_name
    ]


@click.command()
@click.argument("cluster_config_file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--port",
    type=int,
    default=DEFAULT_PORT,
    show_default=True,
    help="The control service's TCP port.",
)
@click.option(
    "-y",
    "--yes",
    is_flag=True,
    help="Accepted for Ray compatibility (nothing is asked).",
)
@click.pass_context
def up(ctx: click.Context, cluster_config_file: str, port: int, yes: bool) -> None:
    """Start the head of CLUSTER_CONFIG_FILE's cluster here, with its autoscaler."""
    config = read_config(cluster_config_file)
    if running_heads(config.cluster_name):
        raise click.ClickException(
            f"The cluster {config.cluster_name!r} is already up on this machine; "
            f"'ember down {cluster_config_file}' stops it."
        )
    ctx.invoke(
        start,
        head=True,
        port=port,
        autoscaling_config=cluster_config_file,
        **head_options(config),
    )


def down_session(rec: dict[str, Any], config: ClusterConfig, *, grace_s: float) -> int:
    """Stop one head's autoscaler, then its provider's nodes, then the head; a count."""
    procs = list(rec.get("processes", []))
    stop_autoscalers(
        [p for p in procs if p.get("name") == AUTOSCALER_NAME], grace_s=grace_s
    )
    session_dir = str(rec["session_dir"])
    provider = make_provider(
        config,
        address=str(rec["control_address"]),
        token="",
        state_dir=state_dir(session_dir),
    )
    provider.terminate_all()
    stopped = stop_session_daemons(procs, force=False, grace_s=grace_s)
    session.remove_session_record(session_dir)
    session.remove_cluster_record(session_dir)
    session.remove_token(str(rec["control_address"]))
    remove_session_leftovers(session_dir)
    return len(stopped)


@click.command()
@click.argument("cluster_config_file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-y",
    "--yes",
    is_flag=True,
    help="Accepted for Ray compatibility (nothing is asked).",
)
@click.option(
    "-g",
    "--grace-period",
    type=click.FloatRange(min=0),
    default=STOP_GRACE_S,
    show_default=True,
    help="Seconds to wait after SIGTERM before sending SIGKILL.",
)
def down(cluster_config_file: str, yes: bool, grace_period: float) -> None:
    """Stop CLUSTER_CONFIG_FILE's cluster: its autoscaler, worker nodes and head."""
    config = read_config(cluster_config_file)
    heads = running_heads(config.cluster_name)
    if not heads:
        raise click.ClickException(
            f"No cluster named {config.cluster_name!r} is up on this machine."
        )
    for rec in heads:
        down_session(rec, config, grace_s=grace_period)
    click.echo(f"Stopped the cluster {config.cluster_name!r}.")
