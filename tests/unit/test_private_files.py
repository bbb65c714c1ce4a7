"""Private folders and files (common/private_files.py) and where session.py puts them."""

from __future__ import annotations

import os
import stat

import pytest

from ember.common import private_files as pf, session

NOBODY = 65534


def mode(path: str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_new_folder_is_0700_and_an_existing_private_one_is_accepted(tmp_path):
    path = str(tmp_path / "f")
    assert pf.ensure_private_dir(path) == path
    assert mode(path) == 0o700
    assert pf.ensure_private_dir(path) == path


def test_a_folder_with_group_or_other_bits_is_refused_with_its_mode(tmp_path):
    path = tmp_path / "wide"
    path.mkdir()
    os.chmod(path, 0o755)
    with pytest.raises(pf.UnsafePathError) as e:
        pf.ensure_private_dir(str(path))
    assert str(path) in str(e.value)
    assert "mode 755" in str(e.value)


def test_a_symlink_in_place_of_the_folder_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(pf.UnsafePathError, match="not a folder"):
        pf.ensure_private_dir(str(link))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown to another user")
def test_a_folder_of_another_user_is_refused_naming_the_owner(tmp_path):
    path = tmp_path / "theirs"
    path.mkdir(mode=0o700)
    os.chown(path, NOBODY, NOBODY)
    with pytest.raises(pf.UnsafePathError) as e:
        pf.ensure_private_dir(str(path))
    assert str(path) in str(e.value)
    assert f"uid {NOBODY}" in str(e.value)
    assert isinstance(e.value, PermissionError)


def test_write_private_is_0600_and_replaces_a_planted_symlink(tmp_path):
    bait = tmp_path / "bait"
    bait.write_text("")
    os.chmod(bait, 0o666)
    target = tmp_path / "record.json"
    target.symlink_to(bait)
    pf.write_private(str(target), "secret")
    assert not os.path.islink(target)
    assert target.read_text() == "secret"
    assert mode(str(target)) == 0o600
    assert bait.read_text() == ""  # the symlink was replaced, never followed
    assert sorted(os.listdir(tmp_path)) == ["bait", "record.json"]


def test_logs_are_0600_and_never_opened_through_a_symlink(tmp_path):
    log = str(tmp_path / "a.log")
    fd = pf.open_private_log(log)
    os.write(fd, b"x")
    os.close(fd)
    assert mode(log) == 0o600
    bait = tmp_path / "bait"
    bait.write_text("")
    (tmp_path / "b.log").symlink_to(bait)
    with pytest.raises(OSError):
        pf.open_private_log(str(tmp_path / "b.log"))


def test_read_private_refuses_a_symlink(tmp_path):
    (tmp_path / "real").write_text("t")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert pf.read_private(str(tmp_path / "real")) == "t"
    assert pf.read_private(str(tmp_path / "missing")) is None
    with pytest.raises(pf.UnsafePathError):
        pf.read_private(str(tmp_path / "link"))


def test_the_runtime_folder_is_per_user(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    expected = str(tmp_path / f"ember-{os.geteuid()}")
    assert session.runtime_dir_path() == expected
    assert session.root_dir() == expected
    assert mode(expected) == 0o700
    s = session.new_session_dir(tag="t")
    assert os.path.dirname(s) == expected
    for sub in ("", "sockets", "logs"):
        assert mode(os.path.join(s, sub)) == 0o700
    assert session.cluster_record_path() == os.path.join(
        expected, "current_cluster.json"
    )


def test_xdg_runtime_dir_is_used_only_when_private(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    xdg = tmp_path / "run"
    xdg.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    assert session.runtime_dir_path() == str(xdg / "ember")
    os.chmod(xdg, 0o755)
    assert session.runtime_dir_path() == str(tmp_path / f"ember-{os.geteuid()}")


def test_a_wide_runtime_folder_is_refused_by_the_cluster_record(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    folder = session.runtime_dir_path()
    os.mkdir(folder, 0o777)
    os.chmod(folder, 0o777)
    with pytest.raises(PermissionError, match=folder):
        session.read_cluster_record()
    with pytest.raises(PermissionError, match=folder):
        session.new_session_dir()


def test_each_cluster_has_its_own_token_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    a = session.write_token("token-a", "tcp:10.0.0.1:6379")
    b = session.write_token("token-b", "tcp:10.0.0.1:6380")
    assert a != b
    assert a == str(tmp_path / ".ember" / "clusters" / "10.0.0.1_6379" / "auth_token")
    assert session.read_token("tcp:10.0.0.1:6379") == "token-a"
    assert session.read_token("10.0.0.1:6380") == "token-b"
    assert mode(a) == 0o600
    assert mode(os.path.dirname(a)) == 0o700
    assert mode(str(tmp_path / ".ember")) == 0o700
    # A token copied by hand to the classic place is the last resort.
    assert session.read_token("tcp:10.9.9.9:1") == ""
    (tmp_path / ".ember" / "auth_token").write_text("copied\n")
    assert session.read_token("tcp:10.9.9.9:1") == "copied"
