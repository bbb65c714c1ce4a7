"""``ember memory``: the object refs held in a cluster and its stores' use, as ``ray memory``.

The refs come from every core worker (``ember.util.state.objects.collect``),
grouped by node address or call site, sorted, with a summary per group of the
bytes held by each kind of reference; then the object stores' use across the
nodes and what they spilled and restored (``node.get_stats``).
"""

from __future__ import annotations

import datetime
import os
from collections import defaultdict
from typing import Any

import click

from ember.common import session
from ember.util.state.exception import RayStateApiException
from ember.util.state.objects import ObjectsSnapshot, collect

UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9}
GROUP_BY = ("NODE_ADDRESS", "STACK_TRACE")
SORT_BY = ("PID", "OBJECT_SIZE", "REFERENCE_TYPE")
#: summary columns: (title, reference type counted)
SUMMARY_COLUMNS = (
    ("Local References", "LOCAL_REFERENCE"),
    ("Pinned", "PINNED_IN_MEMORY"),
    ("Used by task", "USED_BY_PENDING_TASK"),
    ("Captured in Objects", "CAPTURED_IN_OBJECT"),
    ("Actor Handles", "ACTOR_HANDLE"),
)
ROW_COLUMNS = (
    "IP Address",
    "PID",
    "Type",
    "Call Site",
    "Status",
    "Attempt",
    "Size",
    "Reference Type",
    "Object Ref",
)
MIB = 1024 * 1024


def _size(n: int, unit: str) -> str:
    return f"{n / UNITS[unit]} {unit}"


def _sort_key(sort_by: str) -> Any:
    if sort_by == "PID":
        return lambda r: r["pid"]
    if sort_by == "REFERENCE_TYPE":
        return lambda r: r["reference_type"]
    return lambda r: r["object_size"]


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    ]


def _group_summary(rows: list[dict[str, Any]], unit: str) -> list[str]:
    used = sum(r["object_size"] for r in rows if r["object_size"] > 0)
    counts: dict[str, int] = defaultdict(int)
    sizes: dict[str, int] = defaultdict(int)
    for r in rows:
        counts[r["reference_type"]] += 1
        sizes[r["reference_type"]] += max(r["object_size"], 0)
    head = ["Mem Used by Objects", *(title for title, _ in SUMMARY_COLUMNS)]
    values = [_size(used, unit)] + [
        f"{counts[kind]}, ({_size(sizes[kind], unit)})" for _, kind in SUMMARY_COLUMNS
    ]
    lines = _table([head, values])
    spilled = [r for r in rows if r["spilled"]]
    if spilled:
        nbytes = sum(max(r["object_size"], 0) for r in spilled)
        lines.append(f"Spilled to disk: {len(spilled)}, ({_size(nbytes, unit)})")
    return lines


def format_refs(
    snap: ObjectsSnapshot,
    group_by: str = "NODE_ADDRESS",
    sort_by: str = "OBJECT_SIZE",
    units: str = "B",
    num_entries: int | None = None,
) -> str:
    """The per-group tables of ``ember memory``."""
    rows = sorted(snap.rows, key=_sort_key(sort_by))
    groups: dict[str, list[dict[str, Any]]] = {}
    key = "ip" if group_by == "NODE_ADDRESS" else "call_site"
    for r in rows:
        groups.setdefault(r[key], []).append(r)
    label = group_by.lower().replace("_", " ")
    shown = "all" if num_entries is None else str(num_entries)
    out = [
        f"Grouping by {label}...        Sorting by {sort_by.lower().replace('_', ' ')}..."
        f"        Display {shown} entries per group...",
        "",
        "",
    ]
    for name, members in groups.items():
        out.append(f"--- Summary for {label}: {name} ---")
        out.extend(_group_summary(members, units))
        out.append("")
        out.append(f"--- Object references for {label}: {name} ---")
        table = [list(ROW_COLUMNS)]
        for r in members[:num_entries] if num_entries is not None else members:
            size = r["object_size"]
            table.append(
                [
                    r["ip"],
                    str(r["pid"]),
                    r["type"].capitalize(),
                    r["call_site"],
                    "-" if r["task_status"] == "NIL" else r["task_status"],
                    str(r["attempt_number"]),
                    _size(size, units) if size > -1 else "?",
                    r["reference_type"],
                    r["object_id"],
                ]
            )
        out.extend(_table(table))
        out.append("")
    if not snap.callsite_enabled:
        out.append(
            "To record where each ObjectRef is created, set the environment variable "
            "EMBER_RECORD_REF_CREATION_SITES=1 for `ember start` and the driver."
        )
        out.append("")
    return "\n".join(out) + "\n"


def format_store_stats(snap: ObjectsSnapshot) -> str:
    """The aggregate store lines of ``ember memory`` (all that ``--stats-only`` prints)."""
    stats = [n.stats for n in snap.nodes if n.stats is not None]
    used = sum(s.store_used for s in stats)
    capacity = sum(s.store_capacity for s in stats)
    objects = sum(s.store_objects for s in stats)
    full = round(100 * used / capacity, 2) if capacity else 0.0
    out = [
        "--- Aggregate object store stats across all nodes ---",
        f"Object store memory usage {used // MIB} MiB, {objects} objects, {full}% full "
        f"({len(stats)} node{'s' if len(stats) != 1 else ''}, "
        f"{capacity // MIB} MiB in all)",
    ]
    spilled = sum(s.spilled_bytes for s in stats)
    if spilled or any(s.spilled_objects for s in stats):
        on_disk = sum(s.spilled_bytes_on_disk for s in stats)
        out.append(
            f"Spilled {spilled // MIB} MiB, {sum(s.spilled_objects for s in stats)} "
            f"objects ({on_disk // MIB} MiB in {sum(s.spill_files for s in stats)} "
            "spill files now)"
        )
    restored = sum(s.restored_bytes for s in stats)
    if restored or any(s.restored_objects for s in stats):
        out.append(
            f"Restored {restored // MIB} MiB, "
            f"{sum(s.restored_objects for s in stats)} objects"
        )
    missing = snap.partial_failure_warning()
    if missing:
        out.append(missing)
    return "\n".join(out) + "\n"


@click.command()
@click.option(
    "--address",
    default=None,
    help="The head's HOST:PORT (default: the cluster recorded on this machine).",
)
@click.option("--token-file", default=None, help="A file holding the cluster token.")
@click.option(
    "--group-by",
    type=click.Choice(GROUP_BY),
    default="NODE_ADDRESS",
    show_default=True,
    help="Group the refs by node address or by call site.",
)
@click.option(
    "--sort-by",
    type=click.Choice(SORT_BY),
    default="OBJECT_SIZE",
    show_default=True,
    help="Sort the refs of each group (ascending).",
)
@click.option(
    "--units",
    type=click.Choice(tuple(UNITS)),
    default="B",
    show_default=True,
    help="The unit of object sizes.",
)
@click.option(
    "--no-format",
    is_flag=True,
    help="Accepted for Ray's CLI; the tables are plain text.",
)
@click.option(
    "--stats-only", is_flag=True, help="Print only the object stores' statistics."
)
@click.option(
    "--num-entries",
    "--n",
    type=click.IntRange(min=0),
    default=None,
    help="Show at most this many refs per group.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the cluster's answer.",
)
def memory(
    address: str | None,
    token_file: str | None,
    group_by: str,
    sort_by: str,
    units: str,
    no_format: bool,
    stats_only: bool,
    num_entries: int | None,
    timeout: float,
) -> None:
    """Print the object refs held in the cluster and its object stores' use."""
    if token_file:
        # for this process only: the state client reads it from the environment
        try:
            token = session.read_token_file(token_file)
        except OSError as exc:
            raise click.ClickException(
                f"Cannot read the token file {token_file}: {exc}"
            ) from exc
        if not token:
            raise click.ClickException(f"The token file {token_file} is empty.")
        os.environ[session.TOKEN_ENV] = token
    try:
        snap = collect(address, timeout)
    except RayStateApiException as exc:
        raise click.ClickException(str(exc)) from exc
    now = datetime.datetime.now()
    header = f"======== Object references status: {now} ========"
    body = format_store_stats(snap)
    if not stats_only:
        body = format_refs(snap, group_by, sort_by, units, num_entries) + body
    click.echo(f"{header}\n{body}", nl=False)
