"""``ember start``: start the head node's daemons, or a node that joins a cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import click

from ember.cli import cluster_client, tls_options
from ember.cli.autoscaler_proc import read_config, start_autoscaler
from ember.cli.daemons import (
    Daemon,
    DaemonStartError,
    daemon_env,
    running,
    spawn,
    stop_processes,
    stop_session_daemons,
    wait_ready,
)
from ember.cli.dashboard_proc import INCLUDE_HELP, dashboard_lines, start_dashboard
from ember.cli.node_options import (
    node_resources,
    parse_labels,
    parse_resources,
    primary_ip,
)
from ember.common import dashboard_launch, session, tls_files
from ember.common.resources import default_object_store_bytes
from ember.metrics.files import session_files

DEFAULT_PORT = 6379


def _start_failed(exc: DaemonStartError) -> click.ClickException:
    tail = "\n".join(exc.log_tail.strip().splitlines()[-15:])
    hint = ""
    if "Address already in use" in exc.log_tail or "address already in use" in tail:
        hint = "\nThe port is taken: pick another with --port."
    return click.ClickException(f"{exc}.\nLast lines of the log:\n{tail}{hint}")


def _node_args(
    session_dir: str,
    control: str,
    ip: str,
    totals: dict[str, float],
    store: int,
    listen_address: str | None,
    labels: dict[str, str] | None = None,
    spill_dir: str | None = None,
    metrics_port: int | None = None,
) -> list[str]:
    args = [
        "--session-dir",
        session_dir,
        "--control",
        control,
        "--node-ip",
        ip,
        "--resources",
        json.dumps(totals),
        "--object-store-bytes",
        str(store),
    ]
    if listen_address:
        args += ["--listen-address", listen_address]
    if labels:
        args += ["--labels", json.dumps(labels)]
    if spill_dir:
        args += ["--object-spilling-directory", os.path.abspath(spill_dir)]
    if metrics_port is not None:
        args += ["--metrics-export-port", str(metrics_port)]
    return args


def _refuse_live_head(address: str) -> None:
    """Refuse to start a head where a recorded head of this user still runs."""
    for rec in session.list_session_records():
        same = rec.get("head") and rec.get("control_address") == address
        if same and running(list(rec.get("processes", []))):
            raise click.ClickException(
                f"An ember cluster of this user already runs at "
                f"{address.removeprefix('tcp:')} (session {rec['session_dir']}); "
                f"its token is in {session.token_path(address)}. Stop it with "
                "'ember stop', or start this head with another --port."
            )


def _note_replaced_record(address: str) -> None:
    """Say so when the record named another live cluster (init() now joins this one)."""
    current = session.read_cluster_record()
    if current is None or session.dead_processes(current):
        return
    previous = str(current.get("control_address", "")).removeprefix("tcp:")
    if previous and current.get("control_address") != address:
        click.echo(
            f"Replacing the cluster record of {previous} (which keeps running): "
            "ember.init() on this machine now joins this cluster; pass "
            f"address='{previous}' to join that one.",
            err=True,
        )


def start_head(opts: dict[str, Any]) -> tuple[list[Daemon], dict[str, Any]]:
    """Start the control service and the head's node daemon (detached)."""
    ip = opts["node_ip_address"] or primary_ip()
    if opts["port"]:
        _refuse_live_head(f"tcp:{ip}:{opts['port']}")
    token = opts["token"] or (
        session.read_token_file(opts["token_file"]) if opts["token_file"] else ""
    )
    token = token or session.new_token()
    try:
        metrics_options = session_files.FileOptions.from_env()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    files = tls_options.resolve(opts, tls_files.this_machine_names(ip))
    tls_options.apply(files)
    session_dir = session.new_session_dir(opts["temp_dir"])
    env = daemon_env(token, die_with_parent=False)
    storage = opts["storage"] or "sqlite"
    logs = os.path.join(session_dir, "logs")
    daemons: list[Daemon] = []
    try:
        control, r = spawn(
            "control service",
            "ember.control",
            [
                "--session-dir",
                session_dir,
                "--unix",
                os.path.join(session_dir, "sockets", "control"),
                # The node's address unless --listen-address says otherwise (e.g.
                # 0.0.0.0 for every interface); the token guards the door.
                "--host",
                opts["listen_address"] or ip,
                "--port",
                str(opts["port"]),
                "--storage",
                storage,
                # Restarted on the same address when it dies (its state is in storage).
                "--supervise",
                "--metrics-export-port",
                str(opts.get("control_metrics_export_port", 0)),
            ],
            env,
            os.path.join(logs, "control.log"),
            detached=True,
        )
        daemons.append(control)
        port = wait_ready(control, r).rpartition(":")[2]
        address = f"tcp:{ip}:{port}"
        _refuse_live_head(address)
        store = opts["object_store_memory"] or default_object_store_bytes()
        totals = node_resources(
            ip,
            head=True,
            num_cpus=opts["num_cpus"],
            num_gpus=opts["num_gpus"],
            resources=opts["resources"],
            object_store_bytes=store,
        )
        node, r = spawn(
            "node daemon",
            "ember.node",
            [
                *_node_args(
                    session_dir,
                    address,
                    ip,
                    totals,
                    store,
                    opts["listen_address"],
                    opts["labels"],
                    opts.get("object_spilling_directory"),
                    opts.get("metrics_export_port", 0),
                ),
                "--head",
            ],
            env,
            os.path.join(logs, "node.log"),
            detached=True,
        )
        daemons.insert(0, node)
        wait_ready(node, r)
        dashboard = start_dashboard(opts, session_dir, ip, env)
        if dashboard is not None:
            daemons.append(dashboard)
        if opts.get("autoscaling_config") is not None:
            daemons.append(
                start_autoscaler(opts["autoscaling_config"], session_dir, address, env)
            )
    except DaemonStartError as exc:
        stop_processes(
            [d.record() for d in daemons if d.proc.poll() is None], force=True
        )
        raise _start_failed(exc) from exc
    except click.ClickException:
        stop_processes(
            [d.record() for d in daemons if d.proc.poll() is None], force=True
        )
        raise
    token_file = session.write_token(token, address)
    metrics = session_files.write_session_files(
        session_dir, token_file, metrics_options
    )
    tls_files.record_for_cluster(address, files)
    record = {
        "session_dir": session_dir,
        "control_address": address,
        "head": True,
        "processes": [d.record() for d in daemons],
        "dashboard": f"{opts['dashboard_host']}:{opts['dashboard_port']}",
        "dashboard_url": dashboard.ready_line if dashboard is not None else None,
        "storage": storage,
        "token_file": token_file,
        "prometheus_config": metrics.prometheus_yml,
        "grafana_config": metrics.grafana_ini,
        "tls": None if files is None else files._asdict(),
        "started": time.time(),
    }
    if opts.get("autoscaling_config") is not None:
        record["cluster_name"] = opts["autoscaling_config"].cluster_name
    session.write_session_record(session_dir, record)
    _note_replaced_record(address)
    session.write_cluster_record(
        {
            "kind": "head",
            "control_address": address,
            "token": token,
            "session_dir": session_dir,
            "pid": control.proc.pid,
            # not the dashboard's: the cluster runs on when it is down
            "processes": [
                d.record() for d in daemons if d.name != dashboard_launch.NAME
            ],
        }
    )
    return daemons, record


def join_cluster(opts: dict[str, Any]) -> tuple[list[Daemon], dict[str, Any]]:
    """Start a node daemon that joins the control service at ``--address``."""
    address = cluster_client.control_address(opts["address"])
    token = cluster_client.token_for(address, opts["token"], opts["token_file"])
    host = address.removeprefix("tcp:").rpartition(":")[0]
    ip = opts["node_ip_address"] or primary_ip(host)
    files = tls_options.resolve(opts, tls_files.this_machine_names(ip))
    tls_options.apply(files)
    # Ask the control service first: a wrong token or address fails here, at once.
    cluster_client.get_status(address, token, find_tls=False)
    session_dir = session.new_session_dir(opts["temp_dir"], latest=False)
    store = opts["object_store_memory"] or default_object_store_bytes()
    totals = node_resources(
        ip,
        head=False,
        num_cpus=opts["num_cpus"],
        num_gpus=opts["num_gpus"],
        resources=opts["resources"],
        object_store_bytes=store,
    )
    node, r = spawn(
        "node daemon",
        "ember.node",
        _node_args(
            session_dir,
            address,
            ip,
            totals,
            store,
            opts["listen_address"],
            opts["labels"],
            opts.get("object_spilling_directory"),
            opts.get("metrics_export_port", 0),
        ),
        daemon_env(token, die_with_parent=False),
        os.path.join(session_dir, "logs", "node.log"),
        detached=True,
    )
    try:
        wait_ready(node, r)
    except DaemonStartError as exc:
        if node.proc.poll() is None:
            stop_processes([node.record()], force=True)
        raise _start_failed(exc) from exc
    tls_files.record_for_cluster(address, files)
    record = {
        "session_dir": session_dir,
        "control_address": address,
        "head": False,
        "processes": [node.record()],
        "tls": None if files is None else files._asdict(),
        "started": time.time(),
    }
    session.write_session_record(session_dir, record)
    # A head running here keeps session_latest: its metrics files are the cluster's.
    session.link_latest(session_dir, unless_live_head=True)
    current = session.read_cluster_record()
    if (
        current is None
        or current.get("control_address") != address
        or session.dead_processes(current)
    ):
        session.write_cluster_record(
            {
                "kind": "node",
                "control_address": address,
                "token": token,
                "session_dir": session_dir,
                "pid": node.proc.pid,
                "processes": record["processes"],
            }
        )
    return [node], record


def block(daemons: list[Daemon], record: dict[str, Any]) -> None:
    """Stay in the foreground until Ctrl-C or a daemon exits; then stop them all."""

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)
    click.echo("--block: the daemons run until Ctrl-C (or until one of them exits).")
    exited: Daemon | None = None
    try:
        while exited is None:
            for d in daemons:
                try:
                    d.proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    continue
                exited = d
                break
    except KeyboardInterrupt:
        click.echo("Stopping the ember daemons...")
    stop_session_daemons(record["processes"], force=False)
    session.remove_session_record(record["session_dir"])
    session.remove_cluster_record(record["session_dir"])
    if record.get("head"):
        session.remove_token(record["control_address"])
    if exited is not None:
        click.echo(
            f"The {exited.name} exited with code {exited.proc.returncode}; "
            f"see {exited.log_path}",
            err=True,
        )
        sys.exit(1)


def _through_latest(path: str, session_dir: str) -> str:
    """``path`` inside ``session_dir`` spelled through ``session_latest`` if it names it."""
    root = os.path.dirname(session_dir.rstrip("/"))
    latest = os.path.join(root, session.SESSION_LATEST)
    if os.path.realpath(latest) != os.path.realpath(session_dir):
        return path
    return os.path.join(latest, os.path.relpath(path, session_dir))


def _metrics_lines(record: dict[str, Any]) -> str:
    sd = record["session_dir"]
    prom = _through_latest(record["prometheus_config"], sd)
    graf = _through_latest(record["grafana_config"], sd)
    return f"""
  To watch the cluster with Prometheus and Grafana (each in its own terminal):
    prometheus --config.file={prom} --web.listen-address=127.0.0.1:9090
    grafana-server --config {graf} web
  (run grafana-server from Grafana's folder, or add --homepath FOLDER), then open
  http://127.0.0.1:3000 (dashboards in the "ember" folder). Prometheus reads the
  cluster token from the file above to scrape the nodes."""


def _print_head(record: dict[str, Any]) -> None:
    hostport = record["control_address"].removeprefix("tcp:")
    token_file = record["token_file"]
    home = os.path.expanduser("~") + os.sep
    shown = (
        "~/" + token_file[len(home) :] if token_file.startswith(home) else token_file
    )
    tls_flag = " --tls" if record.get("tls") else ""
    click.echo(
        f"""Ember started the head node (session {record["session_dir"]}).
The cluster token is in {shown} (mode 0600).
Whoever has it can run any code as this user on every node of the cluster.
{tls_options.describe(record.get("tls"))}

Next steps
  To add another machine to this cluster, copy that file to the same place
  there (scp; keep it mode 0600), then run on it:
    ember start --address='{hostport}' --token-file {shown}{tls_flag}
  (or set EMBER_AUTH_TOKEN to the file's content: ember start --address='{hostport}'{tls_flag})

  To connect a program on this machine to this cluster:
    import ember
    ember.init(address="auto")
  From another machine that runs a node of the cluster, address="auto" works too;
  elsewhere use ember.init(address="{hostport}") with EMBER_AUTH_TOKEN set.

  To see the cluster:     ember status
  To stop this machine's ember processes:  ember stop
{dashboard_lines(record, session.read_token_file(token_file))}
{_metrics_lines(record)}"""
    )


def _print_joined(record: dict[str, Any]) -> None:
    click.echo(
        f"""Ember started a node that joined the cluster at \
{record["control_address"].removeprefix("tcp:")} (session {record["session_dir"]}).
{tls_options.describe(record.get("tls"))}

  To see the cluster:     ember status
  To stop this machine's ember processes:  ember stop"""
    )


@click.command()
@click.option(
    "--head", is_flag=True, help="Start the head node: the control service plus a node."
)
@click.option(
    "--address",
    default=None,
    help="Join the cluster whose control service listens at HOST:PORT.",
)
@click.option(
    "--port",
    type=int,
    default=DEFAULT_PORT,
    show_default=True,
    help="With --head: the control service's TCP port.",
)
@click.option(
    "--listen-address",
    default=None,
    help="The address the daemons listen on for TCP (default: the node's IP address; "
    "0.0.0.0 for every interface).",
)
@click.option(
    "--node-ip-address",
    default=None,
    help="This node's IP address (default: the machine's primary IP, 127.0.0.1 if none).",
)
@click.option(
    "--num-cpus",
    type=click.IntRange(min=0),
    default=None,
    help="CPUs of this node (default: detected).",
)
@click.option(
    "--num-gpus",
    type=click.IntRange(min=0),
    default=None,
    help="GPUs of this node (default: detected).",
)
@click.option(
    "--resources",
    default=None,
    help="Custom resources as JSON, e.g. '{\"accel\": 2}'.",
)
@click.option(
    "--labels",
    default=None,
    help="This node's labels, for NodeLabelSchedulingStrategy: 'k1=v1,k2=v2' or "
    'JSON, e.g. \'{"region": "us"}\'.',
)
@click.option(
    "--object-store-memory",
    type=click.IntRange(min=1),
    default=None,
    help="Bytes of the node's shared-memory object store (default: 30% of memory).",
)
@click.option(
    "--object-spilling-directory",
    default=None,
    help="Spill objects that do not fit in the object store to a private folder "
    "under this one (default: the session folder's spill/).",
)
@click.option(
    "--include-dashboard",
    type=bool,
    default=True,
    show_default=True,
    help=INCLUDE_HELP,
)
@click.option(
    "--dashboard-host",
    default="127.0.0.1",
    show_default=True,
    help="With --head: the address the dashboard listens on (0.0.0.0: every "
    "interface; every request needs the cluster token).",
)
@click.option(
    "--dashboard-port",
    type=click.IntRange(min=0, max=65535),
    default=8265,
    show_default=True,
    help="With --head: the dashboard's port (0: a free one). Taken: the head starts "
    "without a dashboard, with a warning.",
)
@click.option(
    "--grafana-host",
    default=None,
    help="With --head: Grafana's URL, linked from the dashboard's metrics page.",
)
@click.option(
    "--temp-dir",
    default=None,
    help="Folder for the session folders and the session_latest link, made 0700 "
    "(default: $XDG_RUNTIME_DIR/ember, else $TMPDIR/ember-<uid>). Refused when another "
    "user owns it or group/others can enter it.",
)
@click.option(
    "--token",
    default=None,
    help="Deprecated: the token on the command line is visible to every user of this "
    "machine. Use EMBER_AUTH_TOKEN or --token-file.",
)
@click.option(
    "--token-file",
    default=None,
    type=click.Path(dir_okay=False),
    help="A file holding the cluster token. When joining, the default is "
    "EMBER_AUTH_TOKEN, then ~/.ember/clusters/HOST_PORT/auth_token, then "
    "~/.ember/auth_token. With --head: use this token instead of a random one.",
)
@click.option(
    "--storage",
    default=None,
    help="With --head: where the control service keeps its state: 'sqlite' (default, "
    "a file in the session folder), 'sqlite:PATH', 'memory', or "
    "'redis://HOST:PORT[/DB]' (a head started elsewhere against the same Redis takes "
    "the cluster over; password in EMBER_REDIS_PASSWORD).",
)
@click.option(
    "--metrics-export-port",
    type=click.IntRange(min=0, max=65535),
    default=0,
    show_default=True,
    help="The port of this node's Prometheus endpoint on its IP address (0: a free "
    "port, shown as MetricsExportPort by ember.nodes()); scrapers need the cluster "
    "token as a Bearer token.",
)
@click.option(
    "--control-metrics-export-port",
    type=click.IntRange(min=0, max=65535),
    default=0,
    show_default=True,
    help="With --head: the port of the control service's own Prometheus endpoint "
    "(actors, placement groups, tasks; 0: a free port).",
)
@click.option(
    "--block",
    is_flag=True,
    help="Stay in the foreground; Ctrl-C stops the daemons started here.",
)
@click.option(
    "--autoscaling-config",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="With --head: run the autoscaler beside the head with this cluster config "
    "(YAML, as 'ember up' reads it).",
)
@tls_options.tls_options
def start(**opts: Any) -> None:
    """Start ember's daemons on this machine, in the background.

    On the first machine: "ember start --head".  On every other one:
    "ember start --address HEAD_IP:PORT --token-file FILE" (the token file
    the head printed, copied there).  Programs connect with
    ember.init(address="auto"); "ember stop" stops the daemons.
    """
    if opts["head"] == bool(opts["address"]):
        raise click.UsageError("Pass exactly one of --head or --address HOST:PORT.")
    if not opts["head"] and opts["storage"]:
        raise click.UsageError("--storage applies only with --head.")
    if opts.get("autoscaling_config"):
        if not opts["head"]:
            raise click.UsageError("--autoscaling-config applies only with --head.")
        opts["autoscaling_config"] = read_config(opts["autoscaling_config"])
    opts["resources"] = parse_resources(opts["resources"])
    opts["labels"] = parse_labels(opts["labels"])
    if opts["token"]:
        click.echo(cluster_client.TOKEN_ON_ARGV_WARNING, err=True)
    if opts["head"]:
        daemons, record = start_head(opts)
        _print_head(record)
    else:
        daemons, record = join_cluster(opts)
        _print_joined(record)
    if opts["block"]:
        block(daemons, record)
