"""``ember tls init``: make a cluster's CA and its nodes' certificates."""

from __future__ import annotations

import os
import socket

import click

from ember.common import tls_files
from ember.common.tls_certs import CertError
from ember.common.tls_files import TlsSetupError


def _hosts(raw: str | None) -> list[str]:
    return [h.strip() for h in (raw or "").split(",") if h.strip()]


def _shown(path: str) -> str:
    home = os.path.expanduser("~") + os.sep
    return "~/" + path[len(home) :] if path.startswith(home) else path


def _report(folder: str, written: list[str], note: str = "") -> str:
    where = _shown(folder)
    lines = [f"Wrote (folder {where} mode 0700, every file 0600):"]
    lines += [f"  {_shown(p)}" for p in written]
    if note:
        lines.append(f"  ({note})")
    lines += [
        "",
        "Use them",
        f"  On each node HOST, put {where}/ca.pem, HOST.pem and HOST.key into",
        "  ~/.ember/tls (scp; keep the folder 0700 and the files 0600), then",
        "  start ember there with --tls:",
        "    ember start --head --tls",
        "    ember start --address HEAD_IP:PORT --tls",
        "  --tls finds HOST's files by the node's IP address or host name; files",
        "  elsewhere: pass --tls-cert, --tls-key and --tls-ca. Drivers on a node",
        '  started with --tls use TLS by themselves: ember.init(address="auto").',
        f"  {where}/ca.key never leaves this machine: it signs new nodes with",
        f"    ember tls init --add-node HOST{'' if folder == tls_files.default_dir() else ' --dir ' + where}",
    ]
    return "\n".join(lines)


@click.group()
def tls() -> None:
    """Certificates for mutual TLS between the machines of a cluster."""


@tls.command()
@click.option(
    "--dir",
    "folder",
    default=None,
    help="The folder to write (default: ~/.ember/tls; made 0700).",
)
@click.option(
    "--hosts",
    default=None,
    help="Comma-separated names or IP addresses of the nodes, one certificate each "
    "(default: this machine's host name). Each also holds localhost and 127.0.0.1.",
)
@click.option(
    "--add-node",
    "add_node",
    default=None,
    metavar="HOST[,HOST...]",
    help="Add certificates signed by the folder's existing CA instead of making a CA.",
)
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=tls_files.DEFAULT_DAYS,
    show_default=True,
    help="How long the certificates are valid.",
)
@click.option("--force", is_flag=True, help="Replace files that exist already.")
def init(
    folder: str | None,
    hosts: str | None,
    add_node: str | None,
    days: int,
    force: bool,
) -> None:
    """Make a CA for the cluster and a certificate and key per node."""
    try:
        if add_node is not None:
            if hosts:
                raise click.UsageError("Pass --hosts or --add-node, not both.")
            new = _hosts(add_node)
            if not new:
                raise click.UsageError("--add-node needs a host name or IP address.")
            where, written = tls_files.add_nodes(folder, new, days, force=force)
            click.echo(_report(where, written))
            return
        names = _hosts(hosts) or [socket.gethostname()]
        where, written = tls_files.init_folder(folder, names, days, force=force)
        note = "" if hosts else "no --hosts: one certificate, for this machine"
        click.echo(_report(where, written, note))
    except (TlsSetupError, CertError) as exc:
        raise click.ClickException(str(exc)) from exc
