"""``ember logs [cluster|actor|task|worker|job] ...``: Ray's ``ray logs``.

``ember logs cluster [GLOB]`` lists the log files of a node (the head node
unless ``--node-id``/``--node-ip`` says otherwise) grouped as
``list_logs`` groups them; when exactly one file matches, it prints that
file instead. ``ember logs GLOB`` is the same (the subcommand may be left
out, as in Ray). ``actor --id``, ``worker --pid`` and ``task --id`` print a
worker's stdout (``--err``: stderr). ``--tail N`` (1000 by default, -1 for
all) starts at the last N lines; ``--follow`` keeps printing what is
appended until interrupted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import click

from ember.util.state.exception import RayStateApiException
from ember.util.state.log_client import ClusterLink
from ember.util.state.logs import (
    DEFAULT_LOG_LIMIT,
    DEFAULT_RPC_TIMEOUT,
    get_log,
    list_logs,
)

_ERRORS = (
    RayStateApiException,
    FileNotFoundError,
    ValueError,
    ConnectionError,
    TimeoutError,
    AssertionError,
)


class _LogGroup(click.Group):
    """``ember logs [ARGS]`` without a known subcommand means ``ember logs cluster [ARGS]``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (
            args[0] not in self.commands and args[0] not in ("--help", "-h")
        ):
            args = ["cluster", *args]
        return super().parse_args(ctx, args)


def _common(
    fn: Callable[..., Any], *, node: bool = True, suffix: bool = True
) -> Callable[..., Any]:
    opts = [
        click.option(
            "--address",
            default=None,
            help="The cluster's HOST:PORT (default: the one on this machine).",
        ),
        click.option(
            "--follow", "-f", is_flag=True, help="Keep printing what is appended."
        ),
        click.option(
            "--tail",
            type=int,
            default=DEFAULT_LOG_LIMIT,
            show_default=True,
            help="Lines to print from the end; -1 for the whole file.",
        ),
        click.option(
            "--interval",
            type=float,
            default=None,
            hidden=True,
            help="Seconds between polls with --follow.",
        ),
        click.option(
            "--timeout",
            type=int,
            default=DEFAULT_RPC_TIMEOUT,
            show_default=True,
            help="Seconds for each request.",
        ),
        click.option(
            "--encoding",
            default="utf-8",
            show_default=True,
            help="The files' encoding.",
        ),
        click.option(
            "--encoding-errors",
            default="strict",
            show_default=True,
            help="How to handle bytes that do not decode (Python's codecs errors).",
        ),
    ]
    if node:
        opts += [
            click.option("--node-id", "-id", default=None, help="The node's id (hex)."),
            click.option("--node-ip", "-ip", default=None, help="The node's IP."),
        ]
    if suffix:
        opts.append(
            click.option(
                "--err", is_flag=True, help="stderr (.err) instead of stdout (.out)."
            )
        )
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


@click.group(cls=_LogGroup)
def logs() -> None:
    """Print or list the log files of the cluster (as Ray's `ray logs`).

    \b
      ember logs                       list the head node's log files
      ember logs 'worker*' --node-ip X  list (or print, if one matches) on node X
      ember logs node.log --tail 100    the last 100 lines of the node daemon's log
      ember logs actor --id ID -f       follow an actor's stdout
      ember logs worker --pid N --err   a worker's stderr
      ember logs task --id ID           the stdout of the worker that ran a task
    """


def _head_node_id(address: str | None, timeout: int) -> str:
    try:
        with ClusterLink(address, timeout) as link:
            heads = [n for n in link.alive_nodes() if n.is_head] or link.alive_nodes()
    except _ERRORS as exc:
        raise click.ClickException(str(exc)) from exc
    if not heads:
        raise click.ClickException("the cluster has no alive node")
    return heads[0].node_id.hex()


def _print_chunks(chunks: Iterator[Any], tail: int) -> None:
    if tail > 0:
        click.echo(
            f"--- Log has been truncated to last {tail} lines. Use `--tail` flag to "
            "toggle. Set to -1 for getting the entire file. ---\n"
        )
    try:
        for chunk in chunks:
            click.echo(chunk, nl=False)
    except KeyboardInterrupt:
        return
    except _ERRORS as exc:
        raise click.ClickException(str(exc)) from exc


def _print_log(
    tail: int,
    follow: bool,
    interval: float | None,
    timeout: int,
    encoding: str,
    encoding_errors: str,
    **where: Any,
) -> None:
    """``get_log`` of the file ``where`` names, printed (the commands' shared options)."""
    _print_chunks(
        get_log(
            **where,
            tail=tail,
            follow=follow,
            _interval=interval,
            timeout=timeout,
            encoding=encoding,
            errors=encoding_errors,
        ),
        tail,
    )


@logs.command(name="cluster")
@click.argument("glob_filter", required=False, default="*")
@_common
def log_cluster(
    glob_filter: str,
    address: str | None,
    node_id: str | None,
    node_ip: str | None,
    follow: bool,
    tail: int,
    interval: float | None,
    timeout: int,
    encoding: str,
    encoding_errors: str,
    err: bool,
) -> None:
    """List the log files matching GLOB_FILTER on a node, or print the one that matches."""
    try:
        if node_id is None and node_ip is None:
            node_id = _head_node_id(address, timeout)
        found = list_logs(
            address=address,
            node_id=node_id,
            node_ip=node_ip,
            glob_filter=glob_filter,
            timeout=timeout,
        )
    except _ERRORS as exc:
        raise click.ClickException(str(exc)) from exc
    files = [f for group in found.values() for f in group]
    if len(files) != 1:
        click.echo(f"Node ID: {node_id}" if node_id else f"Node IP: {node_ip}")
        for group, names in sorted(found.items()):
            click.echo(f"{group}:")
            for name in names:
                click.echo(f"- {name}")
        return
    _print_log(
        tail,
        follow,
        interval,
        timeout,
        encoding,
        encoding_errors,
        address=address,
        node_id=node_id,
        node_ip=node_ip,
        filename=files[0],
    )


@logs.command(name="actor")
@click.option("--id", "-a", "actor_id", default=None, help="The actor's id (hex).")
@click.option("--pid", "-pid", type=int, default=None, help="The actor's worker's pid.")
@_common
def log_actor(
    actor_id: str | None,
    pid: int | None,
    address: str | None,
    node_id: str | None,
    node_ip: str | None,
    follow: bool,
    tail: int,
    interval: float | None,
    timeout: int,
    encoding: str,
    encoding_errors: str,
    err: bool,
) -> None:
    """Print an actor's stdout (--err: stderr)."""
    if actor_id is None and pid is None:
        raise click.BadParameter("At least one of `--pid` and `--id` has to be set")
    if actor_id is None and node_id is None and node_ip is None:
        node_id = _head_node_id(address, timeout)
    _print_log(
        tail,
        follow,
        interval,
        timeout,
        encoding,
        encoding_errors,
        address=address,
        node_id=node_id,
        node_ip=node_ip,
        actor_id=actor_id,
        pid=pid,
        suffix="err" if err else "out",
    )


@logs.command(name="worker")
@click.option("--pid", "-pid", type=int, required=True, help="The worker's pid.")
@_common
def log_worker(
    pid: int,
    address: str | None,
    node_id: str | None,
    node_ip: str | None,
    follow: bool,
    tail: int,
    interval: float | None,
    timeout: int,
    encoding: str,
    encoding_errors: str,
    err: bool,
) -> None:
    """Print a worker's stdout (--err: stderr); the node defaults to the head node."""
    if node_id is None and node_ip is None:
        node_id = _head_node_id(address, timeout)
    _print_log(
        tail,
        follow,
        interval,
        timeout,
        encoding,
        encoding_errors,
        address=address,
        node_id=node_id,
        node_ip=node_ip,
        pid=pid,
        suffix="err" if err else "out",
    )


@logs.command(name="task")
@click.option("--id", "task_id", required=True, help="The task's id (hex).")
@click.option(
    "--attempt-number",
    "-a",
    type=int,
    default=0,
    show_default=True,
    help="Which attempt of the task.",
)
@_common
def log_task(
    task_id: str,
    attempt_number: int,
    address: str | None,
    node_id: str | None,
    node_ip: str | None,
    follow: bool,
    tail: int,
    interval: float | None,
    timeout: int,
    encoding: str,
    encoding_errors: str,
    err: bool,
) -> None:
    """Print the stdout (--err: stderr) of the worker that ran a task."""
    _print_log(
        tail,
        follow,
        interval,
        timeout,
        encoding,
        encoding_errors,
        address=address,
        task_id=task_id,
        attempt_number=attempt_number,
        suffix="err" if err else "out",
    )


@logs.command(name="job")
@click.option("--id", "submission_id", required=True, help="The job's submission id.")
@_common
def log_job(
    submission_id: str,
    address: str | None,
    node_id: str | None,
    node_ip: str | None,
    follow: bool,
    tail: int,
    interval: float | None,
    timeout: int,
    encoding: str,
    encoding_errors: str,
    err: bool,
) -> None:
    """A submitted job's driver log (ember has no job submission yet: an error)."""
    _print_chunks(
        get_log(
            address=address,
            submission_id=submission_id,
            tail=tail,
            follow=follow,
            timeout=timeout,
        ),
        tail,
    )
