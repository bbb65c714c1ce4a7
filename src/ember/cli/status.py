"""``ember status``: nodes, resource use and pending demands, as ``ray status`` shows."""

from __future__ import annotations

import datetime

import click

from ember.cli import cluster_client
from ember.protocol.messages import GetClusterStatusReply, NodeInfo

RULE = "-" * 60
BYTE_RESOURCES = ("memory", "object_store_memory")


def _fmt_bytes(n: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:.0f}B"


def _usage_lines(total: dict[str, float], available: dict[str, float]) -> list[str]:
    lines = []
    for name in sorted(total, key=lambda k: (k.startswith("node:"), k)):
        if name.startswith("node:"):
            continue
        used = max(total[name] - available.get(name, total[name]), 0.0)
        if name in BYTE_RESOURCES:
            lines.append(f" {_fmt_bytes(used)}/{_fmt_bytes(total[name])} {name}")
        else:
            lines.append(f" {used:g}/{total[name]:g} {name}")
    return lines or [" (no resources)"]


def _node_line(n: NodeInfo) -> str:
    role = "head" if n.is_head else "worker"
    line = f" node_{n.node_id.hex()}  {n.ip}  ({role})"
    if not n.alive and n.death_reason:
        line += f"  died: {n.death_reason}"
    return line


def format_status(address: str, st: GetClusterStatusReply) -> str:
    """The report ``ember status`` prints."""
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    alive = [n for n in st.nodes if n.alive]
    dead = [n for n in st.nodes if not n.alive]
    out = [
        f"======== Cluster status: {now} ========",
        f"Control service: {address.removeprefix('tcp:')} (state: {st.storage})",
        "Node status",
        RULE,
        "Alive:",
        *([_node_line(n) for n in alive] or [" (no alive nodes)"]),
        "Dead:",
        *([_node_line(n) for n in dead] or [" (no dead nodes)"]),
        "",
        "Resources",
        RULE,
    ]
    total: dict[str, float] = {}
    available: dict[str, float] = {}
    for n in alive:
        out.append(
            f"Node {n.node_id.hex()[:8]} ({n.ip}{', head' if n.is_head else ''}):"
        )
        out.extend(_usage_lines(n.resources, n.available))
        for k, v in n.resources.items():
            total[k] = total.get(k, 0.0) + v
            available[k] = available.get(k, 0.0) + n.available.get(k, v)
    out.append("Total Usage:")
    out.extend(_usage_lines(total, available))
    pending = [d for d in st.demands if not d.infeasible]
    infeasible = [d for d in st.demands if d.infeasible]
    out.append("Pending Demands:")
    out.extend(
        [f" {dict(d.resources)}: {d.count} pending" for d in pending]
        or [" (no resource demands)"]
    )
    out.append("Infeasible Requests (no node could ever run them):")
    out.extend(
        [f" {dict(d.resources)}: {d.count} waiting" for d in infeasible]
        or [" (no infeasible requests)"]
    )
    return "\n".join(out)


@click.command()
@click.option(
    "--address",
    default=None,
    help="HOST:PORT of the control service (default: the cluster on this machine).",
)
@click.option(
    "--token",
    default=None,
    help="Deprecated (visible to every user in ps): use EMBER_AUTH_TOKEN or --token-file.",
)
@click.option(
    "--token-file",
    default=None,
    type=click.Path(dir_okay=False),
    help="A file holding the cluster token (default: EMBER_AUTH_TOKEN, then the token "
    "file of the cluster at --address, then ~/.ember/auth_token).",
)
def status(address: str | None, token: str | None, token_file: str | None) -> None:
    """Print the cluster's nodes, resource use and pending demands."""
    if token:
        click.echo(cluster_client.TOKEN_ON_ARGV_WARNING, err=True)
    control = cluster_client.control_address(address)
    token = cluster_client.token_for(control, token, token_file)
    st = cluster_client.get_status(control, token)
    click.echo(format_status(control, st))
