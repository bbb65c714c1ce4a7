"""The ``serve`` commands (Ray's ``serve`` CLI): run, deploy, status, shutdown.

A driver of the cluster, so it runs as its own process: ``ember serve ...``
(``cli/serve_cmd.py``) starts ``python -m ember.serve.scripts ...``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict
from typing import Any

import click
import yaml

_ADDRESS = click.option(
    "--address",
    "-a",
    default=None,
    help="The cluster to use (default: EMBER_ADDRESS/RAY_ADDRESS or the local cluster).",
)


def _init(address: str | None) -> None:
    import ember

    ember.init(
        address=address
        or os.environ.get("EMBER_ADDRESS")
        or os.environ.get("RAY_ADDRESS")
    )


def _args(arguments: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for arg in arguments:
        key, sep, value = arg.partition("=")
        if not sep or not value:
            raise click.ClickException(
                f"Invalid application argument '{arg}', must be of the form '<key>=<val>'."
            )
        out[key] = value
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "value") and isinstance(value.value, str):
        return value.value
    return value


def _load_config(path: str) -> Any:
    from ember.serve._build import parse_config

    with open(path) as f:
        return parse_config(yaml.safe_load(f))


def _deploy_config(cfg: Any) -> None:
    from ember import serve

    if cfg.http_options:
        serve.start(http_options=cfg.http_options)
    for app in cfg.applications:
        serve.run(app.build(), name=app.name, route_prefix=app.route_prefix)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def serve() -> None:
    """Run and manage Serve applications on the cluster (Ray's ``serve`` CLI)."""


@serve.command()
@click.argument("config_or_import_path")
@click.argument("arguments", nargs=-1, required=False)
@click.option(
    "--app-dir",
    "-d",
    default=".",
    show_default=True,
    help="Folder put first on sys.path to import the app.",
)
@_ADDRESS
@click.option(
    "--blocking/--non-blocking",
    default=True,
    show_default=True,
    help="Wait (and shut Serve down on Ctrl-C) or return once deployed.",
)
@click.option(
    "--route-prefix",
    default=None,
    help="The route prefix (import paths only; default '/').",
)
@click.option(
    "--name",
    default="default",
    show_default=True,
    help="The application's name (import paths only).",
)
@click.option(
    "--host",
    "http_host",
    default=None,
    help="The HTTP proxy's host (default 127.0.0.1).",
)
@click.option(
    "--port",
    "http_port",
    default=None,
    type=int,
    help="The HTTP proxy's port (default 8000).",
)
def run(
    config_or_import_path: str,
    arguments: tuple[str, ...],
    app_dir: str,
    address: str | None,
    blocking: bool,
    route_prefix: str | None,
    name: str,
    http_host: str | None,
    http_port: int | None,
) -> None:
    """Run an application (module:app, or a builder with key=val args) or a config file."""
    from ember import serve as serve_api
    from ember.serve._build import import_application
    from ember.serve.exceptions import ServeConfigError

    sys.path.insert(0, os.path.abspath(app_dir))
    try:
        _init(address)
        http = {
            k: v for k, v in (("host", http_host), ("port", http_port)) if v is not None
        }
        if config_or_import_path.endswith((".yaml", ".yml")):
            cfg = _load_config(config_or_import_path)
            if http:
                cfg.http_options = {**(cfg.http_options or {}), **http}
            _deploy_config(cfg)
        else:
            app = import_application(config_or_import_path, _args(arguments))
            if http:
                serve_api.start(http_options=http)
            serve_api.run(app, name=name, route_prefix=route_prefix or "/")
    except (ServeConfigError, RuntimeError, OSError) as e:
        raise click.ClickException(str(e)) from e
    click.echo("Deployed Serve app successfully.")
    if not blocking:
        return
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        click.echo("Got KeyboardInterrupt, shutting down Serve.")
        _shutdown_bounded()


#: how long Ctrl-C waits for Serve to shut down: a local cluster this driver started got
#: the same SIGINT and may be gone already, and then there is nothing left to stop
SHUTDOWN_WAIT_S = 15.0


def _shutdown_bounded() -> None:
    import threading

    import ember
    from ember import serve as serve_api

    t = threading.Thread(target=serve_api.shutdown, daemon=True)
    t.start()
    t.join(SHUTDOWN_WAIT_S)
    if t.is_alive():
        click.echo(
            "Serve did not answer; its cluster is gone or unreachable.", err=True
        )
        os._exit(1)
    ember.shutdown()


@serve.command()
@click.argument("config_file")
@_ADDRESS
@click.option(
    "--app-dir",
    "-d",
    default=".",
    show_default=True,
    help="Folder put first on sys.path to import the apps.",
)
def deploy(config_file: str, address: str | None, app_dir: str) -> None:
    """Deploy the applications of a Serve config file (Ray's schema) and return."""
    from ember.serve.exceptions import ServeConfigError

    sys.path.insert(0, os.path.abspath(app_dir))
    try:
        cfg = _load_config(config_file)
        _init(address)
        _deploy_config(cfg)
    except (ServeConfigError, RuntimeError, OSError) as e:
        raise click.ClickException(str(e)) from e
    click.echo("Sent deploy request successfully.")


@serve.command()
@_ADDRESS
@click.option("--name", "-n", default=None, help="Only this application.")
def status(address: str | None, name: str | None) -> None:
    """Print the applications' and deployments' status as YAML."""
    from ember import serve as serve_api

    _init(address)
    st = _plain(asdict(serve_api.status()))
    if name is not None:
        if name not in st["applications"]:
            raise click.ClickException(f'Application "{name}" does not exist.')
        st = st["applications"][name]
    click.echo(yaml.safe_dump(st, default_flow_style=False, sort_keys=False), nl=False)


@serve.command()
@_ADDRESS
@click.option("--yes", "-y", is_flag=True, help="Bypass confirmation prompt.")
def shutdown(address: str | None, yes: bool) -> None:
    """Delete every application and stop Serve on the cluster."""
    from ember import serve as serve_api

    if not yes:
        click.confirm("This will shut down Serve on the cluster. Continue?", abort=True)
    _init(address)
    serve_api.shutdown()
    click.echo("Sent shutdown request; applications will be deleted asynchronously.")


@serve.command()
@click.argument("import_paths", nargs=-1, required=True)
@click.option(
    "--app-dir",
    "-d",
    default=".",
    show_default=True,
    help="Folder put first on sys.path to import the apps.",
)
@click.option(
    "--output-path", "-o", default=None, help="Write the YAML here (default: stdout)."
)
def build(import_paths: tuple[str, ...], app_dir: str, output_path: str | None) -> None:
    """Write a config file (Ray's schema) for the applications at IMPORT_PATHS."""
    from ember.serve._build import build_config
    from ember.serve.exceptions import ServeConfigError

    sys.path.insert(0, os.path.abspath(app_dir))
    try:
        doc = build_config(list(import_paths))
    except ServeConfigError as e:
        raise click.ClickException(str(e)) from e
    text = "# This file was generated using the `ember serve build` command.\n\n"
    text += yaml.safe_dump(doc, default_flow_style=False, sort_keys=False, indent=2)
    if output_path:
        with open(output_path, "w") as f:
            f.write(text)
    else:
        click.echo(text, nl=False)


if __name__ == "__main__":
    serve(prog_name="ember serve")
