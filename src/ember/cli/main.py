"""``ember``: the command line."""

from __future__ import annotations

import subprocess
import sys

import click

from ember._version import __version__
from ember.cli.debug import debug
from ember.cli.job_cmd import job
from ember.cli.logs_cmd import logs
from ember.cli.memory_cmd import memory
from ember.cli.serve_cmd import serve
from ember.cli.start import start
from ember.cli.state_cmd import get_cmd, list_cmd, summary_cmd
from ember.cli.status import status
from ember.cli.stop import stop
from ember.cli.timeline_cmd import timeline
from ember.cli.tls_cmd import tls
from ember.cli.up_cmd import down, up
from ember.common.private_files import UnsafePathError


class _Group(click.Group):
    """Reports an unsafe ember folder as a one-line error, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except UnsafePathError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ember")
def main() -> None:
    """ember: a distributed computing engine for Python with Ray's API."""


main.add_command(start)
main.add_command(stop)
main.add_command(status)
main.add_command(tls)
main.add_command(debug)
main.add_command(logs)
main.add_command(list_cmd)
main.add_command(get_cmd)
main.add_command(summary_cmd)
main.add_command(timeline)
main.add_command(up)
main.add_command(down)
main.add_command(memory)
main.add_command(job)  # ember/cli/job_cmd.py
main.add_command(serve)  # ember/cli/serve_cmd.py


@main.command()
@click.option(
    "--fake-nn-tasks",
    default=5000,
    show_default=True,
    help="task_num for the fake_NN actor inference seed (the seed uses 100000).",
)
@click.option(
    "--skip-serial", is_flag=True, help="Do not run the 10 s serial baseline."
)
def demo(fake_nn_tasks: int, skip_serial: bool) -> None:
    """Run the seed programs on an embedded local cluster and print a report."""
    args = [sys.executable, "-m", "ember.demo", "--fake-nn-tasks", str(fake_nn_tasks)]
    if skip_serial:
        args.append("--skip-serial")
    raise SystemExit(subprocess.call(args))


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def microbenchmark(args: tuple[str, ...]) -> None:
    """Run the benchmark suite (bench/run.py in a source checkout); args pass through."""
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    script = os.path.join(here, "..", "..", "..", "bench", "run.py")
    if not os.path.exists(script):
        raise click.ClickException(
            "bench/run.py is not found: run this from a source checkout"
        )
    raise SystemExit(subprocess.call([sys.executable, script, *args]))


if __name__ == "__main__":
    main()
