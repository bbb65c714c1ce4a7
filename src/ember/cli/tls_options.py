"""``ember start``'s TLS options: which files a node uses, handed to its daemons.

``--tls`` (or ``EMBER_USE_TLS=1``) turns mutual TLS on; ``--tls-cert``,
``--tls-key`` and ``--tls-ca`` (or ``EMBER_TLS_SERVER_CERT``,
``EMBER_TLS_SERVER_KEY``, ``EMBER_TLS_CA_CERT``) name the files, all three or
none: with none, this machine's files in ``~/.ember/tls`` (written by ``ember
tls init``) are used.  The files are checked (they load, the CA signed the
certificate) before any daemon starts.  :func:`apply` then puts them into this
process's environment, which :func:`ember.cli.daemons.daemon_env` copies to
every daemon (never their argv); the node daemon passes it on to its workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ember.common import tls
from ember.common.tls import TlsFiles
from ember.common.tls_files import TlsSetupError, check_files, find_node_files

F = TypeVar("F", bound=Callable[..., Any])
PATH_OPTIONS = ("tls_cert", "tls_key", "tls_ca")


def tls_options(f: F) -> F:
    """The ``--tls*`` options of ``ember start``."""
    path = click.Path(dir_okay=False)
    for decorator in reversed(
        (
            click.option(
                "--tls",
                is_flag=True,
                envvar=tls.USE_ENV,
                help="Mutual TLS on every TCP connection of this node's daemons and "
                "workers (default files: this machine's in ~/.ember/tls, made by "
                "'ember tls init'). [env: EMBER_USE_TLS]",
            ),
            click.option(
                "--tls-cert",
                type=path,
                envvar=tls.CERT_ENV,
                help="With --tls: this node's certificate. [env: EMBER_TLS_SERVER_CERT]",
            ),
            click.option(
                "--tls-key",
                type=path,
                envvar=tls.KEY_ENV,
                help="With --tls: its private key. [env: EMBER_TLS_SERVER_KEY]",
            ),
            click.option(
                "--tls-ca",
                type=path,
                envvar=tls.CA_ENV,
                help="With --tls: the cluster's CA certificate. [env: EMBER_TLS_CA_CERT]",
            ),
        )
    ):
        f = decorator(f)
    return f


def resolve(opts: dict[str, Any], names: list[str]) -> TlsFiles | None:
    """The checked files of ``--tls*`` (``names``: this machine's, for the default)."""
    given = [opts[k] for k in PATH_OPTIONS]
    if not opts["tls"]:
        ctx = click.get_current_context()
        on_argv = [
            "--" + k.replace("_", "-")
            for k in PATH_OPTIONS
            if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE
        ]
        if on_argv:
            raise click.UsageError(f"{', '.join(on_argv)} needs --tls.")
        return None
    if any(given) and not all(given):
        raise click.UsageError(
            "Pass all of --tls-cert, --tls-key and --tls-ca, or none of them (to use "
            "this machine's files from 'ember tls init')."
        )
    try:
        files = TlsFiles(*given) if all(given) else find_node_files(None, names)
        return check_files(files)
    except TlsSetupError as exc:
        raise click.ClickException(str(exc)) from exc


def apply(files: TlsFiles | None) -> None:
    """Make this process, and the daemons it starts, use ``files`` (None: plaintext)."""
    for var in (tls.USE_ENV, tls.CERT_ENV, tls.KEY_ENV, tls.CA_ENV):
        os.environ.pop(var, None)
    if files is not None:
        os.environ.update(files.env())
    tls.use_files(None)


def describe(files: dict[str, str] | None) -> str:
    """One line for ``ember start``'s report (``files``: the session record's "tls")."""
    if files is None:
        return "TCP traffic is not encrypted (the token guards the door); see --tls."
    return f"All TCP traffic is mutual TLS (certificate {files['cert']}, CA {files['ca']})."
