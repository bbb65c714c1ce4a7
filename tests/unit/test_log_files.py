"""Serving a node's logs folder: listing, tails, offsets, and only files inside it."""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import given, strategies as st

from ember.common.log_names import categorize, err_path, worker_file, worker_match
from ember.node.log_files import LogFiles, LogPathError, tail_start


def pread_of(data: bytes):
    f = io.BytesIO(data)

    def pread(n: int, at: int) -> bytes:
        f.seek(at)
        return f.read(n)

    return pread


@given(
    st.lists(st.text(alphabet="ab\n", max_size=6), max_size=12),
    st.integers(-1, 15),
    st.booleans(),
)
def test_tail_start_gives_the_last_lines(lines, n, final_newline):
    text = "\n".join(lines) + ("\n" if final_newline and lines else "")
    data = text.encode()
    start = tail_start(pread_of(data), len(data), n)
    expected = data.splitlines(keepends=True)
    if n >= 0:
        expected = expected[max(0, len(expected) - n) :] if n else []
    assert data[start:].splitlines(keepends=True) == expected


def test_tail_start_over_many_blocks():
    data = b"".join(b"line %d\n" % i for i in range(50_000))
    start = tail_start(pread_of(data), len(data), 3)
    assert data[start:] == b"line 49997\nline 49998\nline 49999\n"


@pytest.fixture
def folder(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "node.log").write_bytes(b"a\nb\nc\n")
    (logs / worker_file("ab" * 16, 42, "out")).write_bytes(b"hello\n")
    (logs / worker_file("ab" * 16, 42, "err")).write_bytes(b"oops\n")
    (logs / "node.log.1").write_bytes(b"older\n")
    (tmp_path / "secret").write_bytes(b"token\n")
    return logs


def test_list_and_groups(folder):
    files = LogFiles(str(folder)).list()
    assert "node.log" in files
    assert "node.log.1" in files
    groups = categorize(files)
    assert groups["worker_out"] == [worker_file("ab" * 16, 42, "out")]
    assert groups["worker_err"] == [worker_file("ab" * 16, 42, "err")]
    assert groups["node"] == ["node.log", "node.log.1"]
    assert LogFiles(str(folder)).list("*worker*out") == [
        worker_file("ab" * 16, 42, "out")
    ]


def test_read_tail_and_offsets(folder):
    lf = LogFiles(str(folder))
    r = lf.read("node.log", tail_lines=2)
    assert (r.data, r.start, r.end, r.size) == (b"b\nc\n", 2, 6, 6)
    r = lf.read("node.log", offset=4, max_bytes=1)
    assert (r.data, r.start, r.end) == (b"c", 4, 5)
    r = lf.read("node.log", offset=100)  # rotated meanwhile: from the start
    assert r.start == 0
    assert r.data == b"a\nb\nc\n"
    assert lf.read("node.log").data == b"a\nb\nc\n"


def test_a_missing_file_is_named(folder):
    with pytest.raises(FileNotFoundError, match=r"no-such\.log"):
        LogFiles(str(folder)).read("no-such.log")


@pytest.mark.parametrize(
    "name", ["../secret", "/etc/passwd", "sub/../../secret", "", "a\x00b"]
)
def test_names_outside_the_folder_are_refused(folder, name):
    with pytest.raises(LogPathError):
        LogFiles(str(folder)).read(name)


def test_symlinks_are_neither_listed_nor_followed(folder):
    os.symlink(folder.parent / "secret", folder / "leak.log")
    os.symlink(folder.parent, folder / "up")
    lf = LogFiles(str(folder))
    assert "leak.log" not in lf.list()
    assert not any(f.startswith("up") for f in lf.list())
    with pytest.raises(LogPathError):
        lf.read("leak.log")
    with pytest.raises(LogPathError):
        lf.read("up/secret")


def test_worker_names_parse_as_rays():
    name = worker_file("0f" * 16, 1234, "err")
    assert name == f"worker-{'0f' * 16}-ffffffff-1234.err"
    assert worker_match(name) == ("0f" * 16, "ffffffff", 1234, "err")
    assert worker_match("node.log") is None
    assert err_path("/x/worker-1-2.out") == "/x/worker-1-2.err"
