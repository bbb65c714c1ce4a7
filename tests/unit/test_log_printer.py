"""How the driver prints workers' lines: prefixes, colour rules, bars kept apart."""

from __future__ import annotations

import io

import pytest

from ember.protocol.messages import LogLinesMessage
from ember.runtime import progress_bars
from ember.runtime.log_printer import LogPrinter, colour_enabled, format_line, red


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _colour_env(monkeypatch):
    for v in ("NO_COLOR", "EMBER_COLOR_PREFIX", "RAY_COLOR_PREFIX"):
        monkeypatch.delenv(v, raising=False)


def test_prefix_names_the_task_and_the_ip_of_another_node():
    meta = {"pid": 12, "name": "square", "ip": "10.0.0.2"}
    assert format_line(meta, "hi", "10.0.0.2", False) == "(square pid=12) hi"
    assert (
        format_line(meta, "hi", "10.0.0.1", False) == "(square pid=12, ip=10.0.0.2) hi"
    )
    rep = dict(meta, repeated=" [repeated 3x across cluster]")
    assert format_line(rep, "hi", "10.0.0.2", False) == (
        "(square pid=12) hi [repeated 3x across cluster]"
    )
    assert format_line({"prefix": "(old pid=1)"}, "x", "", False) == "(old pid=1) x"


def test_colours_only_on_a_terminal_without_no_color(monkeypatch):
    assert not colour_enabled(io.StringIO())
    assert colour_enabled(Tty())
    coloured = format_line({"pid": 1, "name": "f"}, "x", "", True)
    assert coloured == "\x1b[36m(f pid=1)\x1b[0m x"
    assert red("boom", Tty()) == "\x1b[31mboom\x1b[0m"
    assert red("boom", io.StringIO()) == "boom"
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour_enabled(Tty())
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("RAY_COLOR_PREFIX", "0")
    assert not colour_enabled(Tty())


def msg(pid: int, *lines: str, is_err: bool = False) -> LogLinesMessage:
    return LogLinesMessage(
        job_id=b"\x01\0\0\0",
        prefix=f"(f pid={pid})",
        lines=list(lines),
        is_err=is_err,
        pid=pid,
        ip="1.2.3.4",
        name="f",
    )


def test_printer_dedups_stdout_and_stderr_apart_and_flushes(monkeypatch, capsys):
    monkeypatch.delenv("EMBER_DEDUP_LOGS", raising=False)
    monkeypatch.delenv("RAY_DEDUP_LOGS", raising=False)
    p = LogPrinter("1.2.3.4")
    for pid in (1, 2, 3):
        p.on_lines(msg(pid, "same"))
        p.on_lines(msg(pid, "same", is_err=True))
    out, err = capsys.readouterr()
    assert out == "(f pid=1) same\n"
    assert err == "(f pid=1) same\n"
    p.flush()
    out, err = capsys.readouterr()
    assert out.startswith("(f pid=3) same [repeated 2x across cluster]")
    assert err.startswith("(f pid=3) same [repeated 2x across cluster]")
    assert p.messages == 6


def test_printer_without_dedup_prints_every_line(monkeypatch, capsys):
    monkeypatch.setenv("EMBER_DEDUP_LOGS", "0")
    p = LogPrinter("1.2.3.4")
    for pid in (1, 2, 3):
        p.on_lines(msg(pid, "same"))
    p.flush()
    out, _ = capsys.readouterr()
    assert out.splitlines() == [f"(f pid={pid}) same" for pid in (1, 2, 3)]


def test_tqdm_state_lines_become_a_bar_not_output(monkeypatch, capsys):
    pytest.importorskip("tqdm")
    monkeypatch.setattr(progress_bars, "_manager", None)
    p = LogPrinter("1.2.3.4")
    state = (
        '{"__magic_token__": "__ray_tqdm_magic_token__", "x": %d, "pos": 0, '
        '"desc": "crunch", "total": 4, "unit": "it", "ip": "1.2.3.4", "pid": 77, '
        '"uuid": "u1", "closed": %s}'
    )
    p.on_lines(msg(77, state % (2, "false")))
    p.on_lines(msg(77, state % (4, "true")))
    out, err = capsys.readouterr()
    assert "__ray_tqdm_magic_token__" not in out + err
    assert "(pid=77) crunch" in err
    assert "4/4" in err
    assert progress_bars.manager().bars == {}
