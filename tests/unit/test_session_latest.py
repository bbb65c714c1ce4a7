"""``<root>/session_latest`` and ``--temp-dir`` (common/session.py)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ember.common import private_files as pf, session

NOBODY = 65534


@pytest.fixture
def runtime_root(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    return tmp_path / f"ember-{os.geteuid()}"


def test_session_latest_names_the_newest_session(runtime_root):
    first = session.new_session_dir(tag="a")
    link = runtime_root / "session_latest"
    assert os.readlink(link) == os.path.basename(first)  # relative: the root may move
    second = session.new_session_dir(tag="b")
    assert os.path.realpath(link) == os.path.realpath(second)
    assert os.path.isdir(link / "logs")
    # No temporary link is left behind.
    assert sorted(os.listdir(runtime_root)) == sorted(
        [os.path.basename(first), os.path.basename(second), "session_latest"]
    )


def test_session_dirs_lists_the_folders_not_the_link(runtime_root):
    a = session.new_session_dir(tag="a")
    b = session.new_session_dir(tag="b")
    assert session.session_dirs(str(runtime_root)) == sorted([a, b])


def test_a_session_made_without_latest_leaves_the_link(runtime_root):
    first = session.new_session_dir(tag="a")
    session.new_session_dir(tag="b", latest=False)
    assert os.path.realpath(runtime_root / "session_latest") == first


def test_something_else_named_session_latest_is_left_alone(runtime_root):
    session.root_dir()
    (runtime_root / "session_latest").mkdir()
    s = session.new_session_dir(tag="a")
    assert not os.path.islink(runtime_root / "session_latest")
    assert session.link_latest(s) is False


def _write_pids(session_dir: str, *, head: bool, pid: int) -> None:
    rec = {
        "session_dir": session_dir,
        "head": head,
        "processes": [session.process_entry("control service", pid)],
    }
    pf.write_private(os.path.join(session_dir, session.PIDS_FILE), json.dumps(rec))


def test_a_joining_node_keeps_the_link_of_a_live_head(runtime_root):
    head = session.new_session_dir(tag="head")
    _write_pids(head, head=True, pid=os.getpid())  # this process stands for the head
    node = session.new_session_dir(tag="node", latest=False)
    assert session.link_latest(node, unless_live_head=True) is False
    assert os.path.realpath(runtime_root / "session_latest") == head


def test_a_joining_node_takes_the_link_from_a_dead_head(runtime_root):
    head = session.new_session_dir(tag="head")
    _write_pids(head, head=True, pid=2**22 + 7)  # no such process
    node = session.new_session_dir(tag="node", latest=False)
    assert session.link_latest(node, unless_live_head=True) is True
    assert os.path.realpath(runtime_root / "session_latest") == node


def test_temp_dir_is_the_root_itself_and_made_private(tmp_path):
    root = tmp_path / "ray-like" / "tmp"
    s = session.new_session_dir(str(root))
    assert os.path.dirname(s) == str(root)
    assert stat.S_IMODE(os.lstat(root).st_mode) == 0o700
    assert os.path.realpath(root / "session_latest") == s
    assert session.runtime_dir_path(str(root)) == str(root)


def test_a_temp_dir_others_can_enter_is_refused(tmp_path):
    root = tmp_path / "wide"
    root.mkdir()
    os.chmod(root, 0o755)
    with pytest.raises(pf.UnsafePathError, match="mode 755"):
        session.new_session_dir(str(root))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown to another user")
def test_a_temp_dir_of_another_user_is_refused(tmp_path):
    root = tmp_path / "theirs"
    root.mkdir(mode=0o700)
    os.chown(root, NOBODY, NOBODY)
    with pytest.raises(pf.UnsafePathError) as e:
        session.new_session_dir(str(root))
    assert str(root) in str(e.value)
    assert f"uid {NOBODY}" in str(e.value)
    assert not os.listdir(root)
