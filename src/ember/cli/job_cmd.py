"""``ember job``: submit jobs to a cluster's dashboard and follow them, as ``ray job``.

Every subcommand is one or a few calls of :class:`ember.job_submission.
JobSubmissionClient`; ``--address`` is the dashboard's URL (default: the
cluster recorded on this machine, or ``EMBER_ADDRESS``/``RAY_ADDRESS`` when
it holds a URL) and ``--token`` the cluster token (default:
``EMBER_AUTH_TOKEN``, the recorded cluster's token, its token file).
``ember job submit`` waits for the job and streams its output unless
``--no-wait``, and exits 1 when the job failed or was stopped.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from typing import Any

import click
import yaml

from ember.cli.cluster_client import TOKEN_ON_ARGV_WARNING
from ember.common import session
from ember.job_submission import JobStatus, JobSubmissionClient

_ADDRESS = click.option(
    "--address",
    default=None,
    help="The dashboard's URL (http://HOST:8265); default: the cluster on this machine.",
)


def _token_options(fn: Any) -> Any:
    fn = click.option(
        "--token-file",
        default=None,
        type=click.Path(exists=True, dir_okay=False),
        help="A file holding the cluster token.",
    )(fn)
    return click.option(
        "--token",
        default=None,
        help="Deprecated (visible to every user in ps): the cluster token; default: "
        "EMBER_AUTH_TOKEN, then the recorded cluster's token and token file.",
    )(fn)


def _token(token: str | None, token_file: str | None) -> str | None:
    if token:
        click.echo(TOKEN_ON_ARGV_WARNING, err=True)
        return token
    return session.read_token_file(token_file) if token_file else None


_TOKEN = _token_options
_VERIFY = click.option(
    "--verify/--no-verify", default=True, help="Check the server's TLS certificate."
)


def _client(
    address: str | None,
    token: str | None,
    verify: bool = True,
    headers_json: str | None = None,
) -> JobSubmissionClient:
    headers = _json_option(headers_json, "--headers") or {}
    if not isinstance(headers, dict):
        raise click.BadParameter("--headers must be a JSON object")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        return JobSubmissionClient(address, headers=headers or None, verify=verify)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


def _json_option(value: str | None, what: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"{what} is not JSON: {exc}") from exc


def _report(client: JobSubmissionClient, job_id: str) -> JobStatus:
    """Print the job's outcome (as ``ray job status``); its status."""
    info = client.get_job_info(job_id)
    status = JobStatus(info.status)
    if status == JobStatus.SUCCEEDED:
        click.echo(f"Job '{job_id}' succeeded")
    elif status == JobStatus.STOPPED:
        click.echo(f"Job '{job_id}' was stopped")
    elif status == JobStatus.FAILED:
        click.echo(f"Job '{job_id}' failed")
        if info.message:
            click.echo(f"Status message: {info.message}")
    else:
        click.echo(f"Status for job '{job_id}': {status}")
        if info.message:
            click.echo(f"Status message: {info.message}")
    return status


async def _follow(client: JobSubmissionClient, job_id: str) -> None:
    async for text in client.tail_job_logs(job_id):
        click.echo(text, nl=False)


def _calls(fn: Any) -> Any:
    """Turn the SDK's RuntimeErrors into one-line CLI errors."""

    def wrapper(*args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except (RuntimeError, ConnectionError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@click.group("job")
def job() -> None:
    """Submit, stop and follow jobs on a cluster (Ray's `ray job`)."""


@job.command(context_settings={"ignore_unknown_options": True})
@_ADDRESS
@_TOKEN
@_VERIFY
@click.option(
    "--submission-id", default=None, help="The job's id (default: a new one)."
)
@click.option(
    "--working-dir", default=None, help="A local folder uploaded for the job."
)
@click.option(
    "--runtime-env",
    "runtime_env_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="A YAML (or JSON) file holding the job's runtime_env.",
)
@click.option("--runtime-env-json", default=None, help="The job's runtime_env as JSON.")
@click.option(
    "--headers", "headers_json", default=None, help="Extra HTTP headers as JSON."
)
@click.option("--metadata-json", default=None, help="Metadata (string values) as JSON.")
@click.option("--entrypoint-num-cpus", type=float, default=None)
@click.option("--entrypoint-num-gpus", type=float, default=None)
@click.option("--entrypoint-memory", type=int, default=None)
@click.option("--entrypoint-resources", default=None, help="Custom resources as JSON.")
@click.option(
    "--no-wait", is_flag=True, help="Return once submitted; do not stream logs."
)
@click.argument("entrypoint", nargs=-1, required=True, type=click.UNPROCESSED)
@_calls
def submit(
    address: str | None,
    token: str | None,
    token_file: str | None,
    verify: bool,
    submission_id: str | None,
    working_dir: str | None,
    runtime_env_file: str | None,
    runtime_env_json: str | None,
    headers_json: str | None,
    metadata_json: str | None,
    entrypoint_num_cpus: float | None,
    entrypoint_num_gpus: float | None,
    entrypoint_memory: int | None,
    entrypoint_resources: str | None,
    no_wait: bool,
    entrypoint: tuple[str, ...],
) -> None:
    """Run ENTRYPOINT (after `--`) on the cluster: `ember job submit -- python x.py`."""
    if runtime_env_file and runtime_env_json:
        raise click.UsageError(
            "Only one of --runtime-env and --runtime-env-json can be provided."
        )
    if runtime_env_file:
        with open(runtime_env_file) as f:
            env = yaml.safe_load(f) or {}
    else:
        env = _json_option(runtime_env_json, "--runtime-env-json") or {}
    if not isinstance(env, dict):
        raise click.BadParameter("the runtime_env must be a mapping")
    if working_dir is not None:
        env["working_dir"] = working_dir
    client = _client(address, _token(token, token_file), verify, headers_json)
    click.echo(f"Job submission server address: {client.get_address()}")
    job_id = client.submit_job(
        entrypoint=shlex.join(entrypoint),
        submission_id=submission_id,
        runtime_env=env,
        metadata=_json_option(metadata_json, "--metadata-json"),
        entrypoint_num_cpus=entrypoint_num_cpus,
        entrypoint_num_gpus=entrypoint_num_gpus,
        entrypoint_memory=entrypoint_memory,
        entrypoint_resources=_json_option(
            entrypoint_resources, "--entrypoint-resources"
        ),
    )
    click.echo(f"Job '{job_id}' submitted successfully")
    click.echo(
        f"Next steps: 'ember job logs {job_id}', 'ember job status {job_id}', "
        f"'ember job stop {job_id}'"
    )
    if no_wait:
        return
    click.echo("Tailing logs until the job exits (disable with --no-wait):")
    asyncio.run(_follow(client, job_id))
    if _report(client, job_id) != JobStatus.SUCCEEDED:
        raise SystemExit(1)


@job.command()
@_ADDRESS
@_TOKEN
@click.argument("job_id")
@_calls
def status(
    address: str | None, token: str | None, token_file: str | None, job_id: str
) -> None:
    """Print a job's status and message."""
    _report(_client(address, _token(token, token_file)), job_id)


@job.command()
@_ADDRESS
@_TOKEN
@click.option(
    "-f", "--follow", is_flag=True, help="Stream the output until the job ends."
)
@click.argument("job_id")
@_calls
def logs(
    address: str | None,
    token: str | None,
    token_file: str | None,
    follow: bool,
    job_id: str,
) -> None:
    """Print a job's output."""
    client = _client(address, _token(token, token_file))
    if follow:
        asyncio.run(_follow(client, job_id))
    else:
        click.echo(client.get_job_logs(job_id), nl=False)


@job.command()
@_ADDRESS
@_TOKEN
@click.option("--no-wait", is_flag=True, help="Do not wait for the job to exit.")
@click.argument("job_id")
@_calls
def stop(
    address: str | None,
    token: str | None,
    token_file: str | None,
    no_wait: bool,
    job_id: str,
) -> None:
    """Stop a job (SIGTERM, then SIGKILL after the grace period)."""
    client = _client(address, _token(token, token_file))
    click.echo(f"Attempting to stop job '{job_id}'")
    client.stop_job(job_id)
    if no_wait:
        return
    click.echo(f"Waiting for job '{job_id}' to exit (disable with --no-wait):")
    while not client.get_job_status(job_id).is_terminal():
        time.sleep(0.5)
    _report(client, job_id)


@job.command("list")
@_ADDRESS
@_TOKEN
@_calls
def list_jobs(address: str | None, token: str | None, token_file: str | None) -> None:
    """List every job: submissions, then drivers started by hand."""
    rows = [("SUBMISSION ID", "JOB ID", "STATUS", "ENTRYPOINT")]
    for j in _client(address, _token(token, token_file)).list_jobs():
        rows.append(
            (j.submission_id or "-", j.job_id or "-", str(j.status), j.entrypoint)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        click.echo(
            "  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True))
            + "  "
            + r[3]
        )


@job.command()
@_ADDRESS
@_TOKEN
@click.argument("job_id")
@_calls
def delete(
    address: str | None, token: str | None, token_file: str | None, job_id: str
) -> None:
    """Forget a job that has ended (its log file stays)."""
    _client(address, _token(token, token_file)).delete_job(job_id)
    click.echo(f"Job '{job_id}' deleted successfully")
