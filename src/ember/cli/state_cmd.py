"""``ember list``, ``ember get`` and ``ember summary``: the state API on the command line.

As Ray's ``ray list/get/summary``: ``ember list tasks --filter state=FAILED
--limit 10 --detail --format yaml``, ``ember get actors <id>``, ``ember
summary tasks``.  The resources are the keys of :data:`LIST_RESOURCES` and
:data:`SUMMARIES`; other modules add theirs there (``objects``).  Warnings of
the state API (a result cut by ``--limit``, data dropped at the source) are
printed to stderr as one line each.
"""

from __future__ import annotations

import datetime
import json
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import yaml

from ember.util.state import common
from ember.util.state.actors import summarize_actors
from ember.util.state.exception import RayStateApiException
from ember.util.state.schemas import SCHEMAS, StateSchema
from ember.util.state.tasks import summarize_tasks

ListFn = Callable[..., list[Any]]
GetFn = Callable[..., list[Any]]


def _lister(resource: str) -> ListFn:
    def fn(**kw: Any) -> list[Any]:
        return common.list_resource(resource, **kw)

    return fn


def _getter(resource: str) -> GetFn:
    def fn(id: str, **kw: Any) -> list[Any]:
        return common.get_resource(resource, id, **kw)

    return fn


#: ``ember list/get <resource>``: (its schema, list(**options), get(id, **options))
LIST_RESOURCES: dict[str, tuple[type[StateSchema], ListFn, GetFn | None]] = {
    name: (schema, _lister(name), _getter(name)) for name, schema in SCHEMAS.items()
}
#: ``ember summary <resource>``: (summarize(address=, timeout=,
#: raise_on_missing_output=, _explain=) -> Ray's summary dict, its printer or None
#: for the default one, :func:`format_summary`)
SUMMARIES: dict[
    str,
    tuple[Callable[..., dict[str, Any]], Callable[[dict[str, Any]], str] | None],
] = {
    "tasks": (summarize_tasks, None),
    "actors": (summarize_actors, None),
}

FORMATS = ("default", "json", "yaml", "table")

address_option = click.option(
    "--address",
    default=None,
    help="HOST:PORT of the control service (default: the cluster on this machine).",
)
timeout_option = click.option(
    "--timeout",
    default=common.DEFAULT_RPC_TIMEOUT,
    type=float,
    show_default=True,
    help="Seconds to wait for the answer.",
)


def _resource(name: str) -> str:
    key = name.replace("-", "_")
    if key not in LIST_RESOURCES:
        choices = ", ".join(sorted(k.replace("_", "-") for k in LIST_RESOURCES))
        raise click.BadParameter(f"{name!r}: one of {choices}", param_hint="RESOURCE")
    return key


def parse_filter(text: str) -> tuple[str, str, str]:
    """``key=value`` or ``key!=value`` as a filter triple."""
    i = text.find("=")
    if i <= 0:
        raise click.BadParameter(
            f"{text!r}: write key=value or key!=value", param_hint="--filter"
        )
    if text[i - 1] == "!":
        key, predicate = text[: i - 1], "!="
    else:
        key, predicate = text[:i], "="
    value = text[i + 1 :]
    if not key or not value:
        raise click.BadParameter(
            f"{text!r}: write key=value or key!=value", param_hint="--filter"
        )
    return key.strip(), predicate, value


@contextmanager
def _reported() -> Iterator[None]:
    """State API warnings as one stderr line each; its errors as a usage error."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except (RayStateApiException, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
        finally:
            for w in caught:
                click.echo(f"Warning: {w.message}", err=True)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def grid(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    """Aligned lines: upper-case column names, then one numbered line per row."""
    cells = [[str(i)] + [_cell(r.get(c)) for c in columns] for i, r in enumerate(rows)]
    head = [""] + [c.upper() for c in columns]
    widths = [max(len(row[i]) for row in [head, *cells]) for i in range(len(head))]
    return [
        "  ".join(x.ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
        for line in [head, *cells]
    ]


def table(rows: list[dict[str, Any]], columns: list[str], title: str) -> str:
    """Ray's plain table: a header, the count, then one line per row."""
    now = datetime.datetime.now()
    bar = "=" * 8
    return "\n".join(
        [
            f"{bar} {title}: {now} {bar}",
            "Stats:",
            "-" * 30,
            f"Total: {len(rows)}",
            "",
            "Table:",
            "-" * 30,
            *grid(rows, columns),
        ]
    )


def render(
    rows: list[dict[str, Any]], schema: type[StateSchema], fmt: str, detail: bool
) -> str:
    if fmt == "json":
        return json.dumps(rows)
    if fmt == "yaml":
        return yaml.safe_dump(rows, indent=4, explicit_start=True, sort_keys=False)
    if not rows:
        return "No resource in the cluster"
    return table(rows, schema.list_columns(detail), "List")


@click.command(name="list")
@click.argument("resource")
@click.option(
    "-f",
    "--filter",
    "filters",
    multiple=True,
    help="key=value or key!=value (repeat to AND them; values are case-insensitive).",
)
@click.option("--limit", default=common.DEFAULT_LIMIT, type=int, show_default=True)
@click.option("--detail", is_flag=True, help="Every column (the default format: YAML).")
@click.option("--format", "fmt", default="default", type=click.Choice(FORMATS))
@timeout_option
@address_option
def list_cmd(
    resource: str,
    filters: tuple[str, ...],
    limit: int,
    detail: bool,
    fmt: str,
    timeout: float,
    address: str | None,
) -> None:
    """List the cluster's RESOURCE: actors, tasks, nodes, jobs, workers, placement-groups."""
    key = _resource(resource)
    schema, lister, _ = LIST_RESOURCES[key]
    parsed = [parse_filter(f) for f in filters]
    with _reported():
        data = lister(
            address=address,
            filters=parsed,
            limit=limit,
            timeout=timeout,
            detail=detail,
            raise_on_missing_output=False,
            _explain=fmt in ("default", "table"),
        )
    if detail and fmt == "default":
        fmt = "yaml"
    click.echo(render([d.asdict() for d in data], schema, fmt, detail))


@click.command(name="get")
@click.argument("resource")
@click.argument("id", required=False)
@timeout_option
@address_option
def get_cmd(resource: str, id: str | None, timeout: float, address: str | None) -> None:
    """Print one RESOURCE (actors, tasks, nodes, workers, placement-groups) by ID."""
    key = _resource(resource)
    if not id:
        raise click.BadParameter(
            f"missing the id. Did you mean 'ember list {resource}'?", param_hint="ID"
        )
    schema, _, getter = LIST_RESOURCES[key]
    if getter is None:
        raise click.BadParameter(f"{resource} cannot be looked up by id")
    with _reported():
        data = getter(id, address=address, timeout=timeout)
    if not data:
        click.echo(f"Resource with id={id} not found in the cluster.")
        return
    click.echo(render([d.asdict() for d in data], schema, "yaml", True))


def format_summary(summary: dict[str, Any], resource: str) -> str:
    """Ray's summary layout: the totals, then a table of the groups."""
    cluster = dict(summary.get("cluster") or {})
    if not cluster:
        return "No resource in the cluster"
    groups = cluster.pop("summary", {})
    by = cluster.pop("summary_by", "")
    rows = list(groups.values())
    cols = sorted({k for r in rows for k in r})
    now = datetime.datetime.now()
    stats = yaml.safe_dump(cluster, indent=2, sort_keys=False).rstrip()
    body = grid(rows, cols) if rows else ["(none)"]
    bar = "=" * 8
    return "\n".join(
        [
            f"{bar} {resource.capitalize()} Summary: {now} {bar}",
            "Stats:",
            "-" * 36,
            stats,
            "",
            f"Table (group by {by}):",
            "-" * 36,
            *body,
        ]
    )


@click.command(name="summary")
@click.argument("resource")
@timeout_option
@address_option
def summary_cmd(resource: str, timeout: float, address: str | None) -> None:
    """Summarize RESOURCE (tasks: by function; actors: by class) with counts per state."""
    entry = SUMMARIES.get(resource)
    if entry is None:
        raise click.BadParameter(
            f"{resource!r}: one of {', '.join(sorted(SUMMARIES))}",
            param_hint="RESOURCE",
        )
    fn, printer = entry
    with _reported():
        summary = fn(
            address=address,
            timeout=timeout,
            raise_on_missing_output=False,
            _explain=True,
        )
    click.echo(printer(summary) if printer else format_summary(summary, resource))
