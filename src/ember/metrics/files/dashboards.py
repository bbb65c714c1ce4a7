"""Grafana dashboard JSON, built from the compact panel lists in ``dashboards/*.json``.

A panel list (package data) names each dashboard's rows and panels: a title,
a description, a unit and its PromQL targets as ``[legend, expr]`` pairs.  In
an expression ``@N`` stands for the matchers of the session and node
selectors (``SessionName=~"$SessionName",NodeAddress=~"$NodeAddress"``) and
``@S`` for the session's alone (cluster-wide series such as actors, which
the control service exports).  :func:`build` turns a list into a dashboard
Grafana loads by provisioning: rows, a 24-column grid, ids, the two template
variables, and the provisioned data source's uid on every panel and target.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ember.metrics.files.grafana import DATASOURCE_UID

#: the panel lists shipped with ember, in the order Grafana lists them
SPECS = ("default.json", "object_store.json")
#: a Grafana schema version every Grafana since 9.x reads
SCHEMA_VERSION = 39
GRID_COLUMNS = 24
#: matchers substituted into expressions
NODE_FILTER = 'SessionName=~"$SessionName",NodeAddress=~"$NodeAddress"'
SESSION_FILTER = 'SessionName=~"$SessionName"'
#: every node exports it, with both labels the variables list
VARIABLE_SOURCE = "ember_node_cpu_count"
#: what the variables' "All" matches
ALL_VALUE = ".+"

_HEIGHT = {"timeseries": 8, "stat": 4}
_WIDTH = {"timeseries": 12, "stat": 6}


@dataclass(frozen=True)
class Dashboard:
    """A built dashboard: its file name, uid, title and the JSON object."""

    file: str
    uid: str
    title: str
    model: dict[str, Any]

    def text(self) -> str:
        return json.dumps(self.model, indent=1) + "\n"


def load_spec(name: str) -> dict[str, Any]:
    """A panel list shipped in ``ember/metrics/files/dashboards/``."""
    raw = resources.files("ember.metrics.files").joinpath("dashboards").joinpath(name)
    spec: dict[str, Any] = json.loads(raw.read_text())
    return spec


def expand(expr: str) -> str:
    """``expr`` with ``@N`` and ``@S`` replaced by the selectors' matchers."""
    return expr.replace("@N", NODE_FILTER).replace("@S", SESSION_FILTER)


def _datasource() -> dict[str, str]:
    return {"type": "prometheus", "uid": DATASOURCE_UID}


def _variable(name: str, label: str, query: str, current: str | None) -> dict[str, Any]:
    chosen = (
        {"selected": True, "text": [current], "value": [current]}
        if current
        else {"selected": True, "text": ["All"], "value": ["$__all"]}
    )
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": _datasource(),
        "definition": query,
        "query": {"query": query, "refId": f"{name}-query"},
        "includeAll": True,
        "allValue": ALL_VALUE,
        "multi": True,
        "current": chosen,
        "options": [],
        "refresh": 2,  # on time range change
        "sort": 1,
        "hide": 0,
    }


def _panel(spec: dict[str, Any], pid: int, pos: dict[str, int]) -> dict[str, Any]:
    kind = spec.get("type", "timeseries")
    targets = [
        {
            "refId": chr(ord("A") + i),
            "datasource": _datasource(),
            "expr": expand(expr),
            "legendFormat": legend,
            "range": True,
            "instant": False,
        }
        for i, (legend, expr) in enumerate(spec["targets"])
    ]
    defaults: dict[str, Any] = {"unit": spec.get("unit", "short")}
    if kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "spanNulls": True,
            "stacking": {"mode": "normal" if spec.get("stack") else "none"},
        }
        options: dict[str, Any] = {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "calcs": ["last", "max"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    else:
        options = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
        }
    return {
        "id": pid,
        "type": kind,
        "title": spec["title"],
        "description": spec.get("description", ""),
        "datasource": _datasource(),
        "gridPos": pos,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": targets,
    }


def build(spec: dict[str, Any], session_name: str | None = None) -> Dashboard:
    """The Grafana dashboard of the panel list ``spec``.

    ``session_name``: the session the Session selector shows at first (None:
    all sessions).
    """
    panels: list[dict[str, Any]] = []
    y = 0
    pid = 1
    for row in spec["rows"]:
        panels.append(
            {
                "id": pid,
                "type": "row",
                "title": row["title"],
                "collapsed": False,
                "gridPos": {"h": 1, "w": GRID_COLUMNS, "x": 0, "y": y},
                "panels": [],
            }
        )
        pid += 1
        y += 1
        x = 0
        line_height = 0
        for p in row["panels"]:
            kind = p.get("type", "timeseries")
            w = int(p.get("width", _WIDTH[kind]))
            h = _HEIGHT[kind]
            if x + w > GRID_COLUMNS:
                x, y, line_height = 0, y + line_height, 0
            panels.append(_panel(p, pid, {"h": h, "w": w, "x": x, "y": y}))
            pid += 1
            x += w
            line_height = max(line_height, h)
        y += line_height
    model: dict[str, Any] = {
        "uid": spec["uid"],
        "title": spec["title"],
        "description": spec.get("description", ""),
        "tags": ["ember"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": spec.get("refresh", "10s"),
        "time": {"from": "now-30m", "to": "now"},
        "timepicker": {},
        "annotations": {"list": []},
        "links": [],
        "templating": {
            "list": [
                _variable(
                    "SessionName",
                    "Session",
                    f"label_values({VARIABLE_SOURCE}, SessionName)",
                    session_name,
                ),
                _variable(
                    "NodeAddress",
                    "Node",
                    f"label_values({VARIABLE_SOURCE}{{{SESSION_FILTER}}}, NodeAddress)",
                    None,
                ),
            ]
        },
        "panels": panels,
    }
    return Dashboard(spec["file"], spec["uid"], spec["title"], model)


def build_all(session_name: str | None = None) -> list[Dashboard]:
    """Every dashboard ember ships."""
    return [build(load_spec(name), session_name) for name in SPECS]


def expressions(model: dict[str, Any]) -> list[tuple[str, str]]:
    """``(panel title, expr)`` of every target of a built dashboard."""
    return [
        (p["title"], t["expr"])
        for p in model["panels"]
        if p.get("type") != "row"
        for t in p.get("targets", [])
    ]
