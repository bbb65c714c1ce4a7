"""What a node started by ``ember start`` is: its IP address, resource totals and labels."""

from __future__ import annotations

import json
import socket

import click

from ember.common.node_labels import node_labels_error
from ember.common.resources import (
    default_memory_bytes,
    detect_cpus,
    detect_gpus,
)


def primary_ip(toward: str = "8.8.8.8") -> str:
    """The address this machine uses to reach ``toward`` (no packet is sent)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect((toward, 80))
        ip: str = s.getsockname()[0]
        return ip
    except OSError:
        return "127.0.0.1"
    finally:
        s.close()


def node_resources(
    ip: str,
    *,
    head: bool,
    num_cpus: int | None,
    num_gpus: int | None,
    resources: dict[str, float],
    object_store_bytes: int,
) -> dict[str, float]:
    """A node's totals: detected CPU/GPU/memory, the store, ``node:<ip>``, custom ones."""
    totals: dict[str, float] = {
        "CPU": float(detect_cpus() if num_cpus is None else num_cpus),
        "memory": float(default_memory_bytes(object_store_bytes)),
        "object_store_memory": float(object_store_bytes),
        f"node:{ip}": 1.0,
    }
    gpus = detect_gpus() if num_gpus is None else num_gpus
    if gpus:
        totals["GPU"] = float(gpus)
    if head:
        totals["node:__internal_head__"] = 1.0
    totals.update(resources)
    return totals


def parse_resources(raw: str | None) -> dict[str, float]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise click.BadParameter(
            f"not valid JSON ({exc}); example: --resources='{{\"accel\": 2}}'",
            param_hint="--resources",
        ) from exc
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, int | float) and v >= 0
        for k, v in value.items()
    ):
        raise click.BadParameter(
            "expected a JSON object of resource names to non-negative numbers",
            param_hint="--resources",
        )
    for reserved in ("CPU", "GPU"):
        if reserved in value:
            raise click.BadParameter(
                f"use --num-{reserved.lower()}s instead of {reserved} in --resources",
                param_hint="--resources",
            )
    return {k: float(v) for k, v in value.items()}


def parse_labels(raw: str | None) -> dict[str, str]:
    """``--labels``: ``"k1=v1,k2=v2"`` or a JSON object of str to str (as Ray 2.60)."""
    if not raw or not raw.strip():
        return {}
    text = raw.strip()
    labels: dict[str, str] = {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise click.BadParameter(
                f"not valid JSON ({exc})", param_hint="--labels"
            ) from exc
        if not isinstance(value, dict):
            raise click.BadParameter(
                "expected a JSON object of label names to values", param_hint="--labels"
            )
        labels = value
    else:
        for pair in text.strip('"').split(","):
            key, eq, value = pair.partition("=")
            if not eq or "=" in value:
                raise click.BadParameter(
                    f"{pair!r} is not KEY=VALUE; example: --labels 'region=us,disk=ssd' "
                    'or --labels \'{"region": "us"}\'',
                    param_hint="--labels",
                )
            labels[key.strip()] = value.strip()
    if why := node_labels_error(labels):
        raise click.BadParameter(why, param_hint="--labels")
    return labels
