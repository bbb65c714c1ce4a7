"""Printing workers' output at the driver: prefixes, deduplication, colour, bars.

Data flow (all on the driver's loop thread, ``worker.log_lines``)::

    LogLinesMessage --> LogPrinter.on_lines --> LogDeduplicator (stdout's or stderr's)
                              |                        | batches to print now
                              |                        v
                              +-- tqdm state lines --> BarManager (progress_bars)
                                                       v
                              sys.stdout / sys.stderr: "(name pid=N[, ip=X]) line"

A timer on the loop settles remembered lines one window after they were
first seen (:meth:`LogDeduplicator.expire`), and :meth:`LogPrinter.flush`
settles the rest when the driver shuts down. ``EMBER_DEDUP_LOGS=0`` (or
``RAY_DEDUP_LOGS=0``) prints every line as it comes.

Colour, as Ray's: the prefix in cyan, ``[repeated Nx across cluster]`` in
green, an unhandled task error in red; only when the stream is a terminal,
``NO_COLOR`` is not set (https://no-color.org) and ``EMBER_COLOR_PREFIX`` /
``RAY_COLOR_PREFIX`` is not ``0``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from ember.runtime import progress_bars
from ember.runtime.log_dedup import TQDM_MAGIC, Batch, LogDeduplicator, dedup_enabled

CYAN = "\x1b[36m"
GREEN = "\x1b[32m"
RED = "\x1b[31m"
RESET = "\x1b[0m"
NO_PREFIX_COLOUR_VARS = ("EMBER_COLOR_PREFIX", "RAY_COLOR_PREFIX")


def colour_enabled(stream: Any) -> bool:
    """Whether to write ANSI colours to ``stream`` (a terminal, and NO_COLOR unset)."""
    if os.environ.get("NO_COLOR"):
        return False
    if any(os.environ.get(v) == "0" for v in NO_PREFIX_COLOUR_VARS):
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def red(text: str, stream: Any) -> str:
    """``text`` in red when ``stream`` takes colours (task errors)."""
    return f"{RED}{text}{RESET}" if colour_enabled(stream) else text


def format_line(meta: dict[str, Any], line: str, driver_ip: str, colour: bool) -> str:
    """``(name pid=N[, ip=X]) line[ [repeated Nx across cluster]]``."""
    pid = meta.get("pid")
    if pid:
        name = meta.get("name")
        who = f"{name} pid={pid}" if name else f"pid={pid}"
        ip = meta.get("ip")
        if ip and ip != driver_ip:
            who += f", ip={ip}"
        prefix = f"({who})"
    else:
        prefix = str(meta.get("prefix") or "")
    repeated = str(meta.get("repeated") or "")
    if colour:
        prefix = f"{CYAN}{prefix}{RESET}" if prefix else ""
        repeated = f"{GREEN}{repeated}{RESET}" if repeated else ""
    return f"{prefix} {line}{repeated}" if prefix else f"{line}{repeated}"


class LogPrinter:
    """The driver's printer of what its job's workers write."""

    def __init__(self, driver_ip: str = "") -> None:
        self.driver_ip = driver_ip
        self.dedup = dedup_enabled()
        #: is_err -> that stream's deduplicator
        self._dedups = {
            False: LogDeduplicator.from_env(),
            True: LogDeduplicator.from_env(),
        }
        self._timer: asyncio.TimerHandle | None = None
        #: messages handled so far (tests wait on it)
        self.messages = 0

    def on_lines(self, msg: Any) -> None:
        """``worker.log_lines``: print (or remember) the lines of one message."""
        self.messages += 1
        meta = {"prefix": msg.prefix, "pid": msg.pid, "ip": msg.ip, "name": msg.name}
        batch = Batch((msg.ip, msg.pid or hash(msg.prefix)), list(msg.lines), meta)
        if self.dedup:
            batches = self._dedups[msg.is_err].deduplicate(batch, time.monotonic())
        else:
            batches = [batch]
        self._print(batches, msg.is_err)
        self._arm()

    def _print(self, batches: list[Batch], is_err: bool) -> None:
        stream = sys.stderr if is_err else sys.stdout
        colour = colour_enabled(stream)
        text: list[str] = []
        bars = progress_bars.manager_or_none()
        for b in batches:
            for line in b.lines:
                if TQDM_MAGIC in line:
                    progress_bars.manager(
                        self.driver_ip, colour_enabled(sys.stderr)
                    ).update_line(line)
                else:
                    text.append(
                        format_line(b.meta, line, self.driver_ip, colour) + "\n"
                    )
        if not text:
            return
        try:
            if bars is not None and bars.bars:
                with bars.hidden():
                    stream.write("".join(text))
                    stream.flush()
            else:
                stream.write("".join(text))
                stream.flush()
        except (OSError, ValueError):
            pass  # the driver's stream is closed

    def _arm(self) -> None:
        """Settle remembered lines when the oldest one's window ends (loop thread)."""
        if self._timer is not None or not self.dedup:
            return
        due = [t for d in self._dedups.values() if (t := d.next_expiry()) is not None]
        if not due:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not on the loop (tests call on_lines directly): next message settles
        delay = max(0.0, min(due) - time.monotonic())
        self._timer = loop.call_later(delay + 0.01, self._expire)

    def _expire(self) -> None:
        self._timer = None
        now = time.monotonic()
        for is_err, d in self._dedups.items():
            self._print(d.expire(now), is_err)
        self._arm()

    def flush(self) -> None:
        """Print what the deduplicators still hold (the driver shuts down)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for is_err, d in self._dedups.items():
            self._print(d.flush(), is_err)
        bars = progress_bars.manager_or_none()
        if bars is not None:
            bars.close_all()
