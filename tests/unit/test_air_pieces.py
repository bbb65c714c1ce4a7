"""ember.air: Checkpoint, the configs, Result.from_path and the session hand-off."""

from __future__ import annotations

import os
import threading

import pytest

from ember import air, train, tune
from ember.air.session import Session, TrialInfo, bind


def test_checkpoint_metadata_and_copies(tmp_path):
    src = tmp_path / "c"
    src.mkdir()
    (src / "model.bin").write_bytes(b"\x00\x01")
    checkpoint = air.Checkpoint.from_directory(src)
    assert checkpoint.get_metadata() == {}
    checkpoint.set_metadata({"epoch": 1})
    checkpoint.update_metadata({"loss": 0.5})
    assert checkpoint.get_metadata() == {"epoch": 1, "loss": 0.5}
    copy = checkpoint.to_directory()
    try:
        with open(os.path.join(copy, "model.bin"), "rb") as f:
            assert f.read() == b"\x00\x01"
    finally:
        import shutil

        shutil.rmtree(copy)
    assert repr(checkpoint) == f"Checkpoint(filesystem=local, path={src})"
    assert checkpoint == air.Checkpoint(str(src))
    with pytest.raises(ValueError, match="not a directory"):
        air.Checkpoint.from_directory(tmp_path / "missing")
    with pytest.raises(ValueError, match="local filesystem"):
        air.Checkpoint(str(src), filesystem="s3")


def test_configs(monkeypatch, tmp_path):
    monkeypatch.delenv("EMBER_STORAGE_PATH", raising=False)
    config = air.RunConfig()
    assert config.storage_path == os.path.expanduser("~/ember_results")
    assert config.failure_config == air.FailureConfig(max_failures=0)
    monkeypatch.setenv("EMBER_STORAGE_PATH", str(tmp_path))
    assert air.RunConfig().storage_path == str(tmp_path)
    assert air.RunConfig(storage_path="rel").storage_path == os.path.abspath("rel")
    with pytest.raises(ValueError, match="num_to_keep"):
        air.CheckpointConfig(num_to_keep=0)
    with pytest.raises(ValueError, match="checkpoint_score_order"):
        air.CheckpointConfig(checkpoint_score_order="best")
    assert tune.RunConfig is train.RunConfig is air.RunConfig


def test_report_blocks_until_resumed_and_persists_checkpoints(tmp_path):
    info = TrialInfo("t", "id", str(tmp_path / "trial"), "exp", {"CPU": 1.0})
    os.makedirs(info.dir)
    session = Session(info, None)
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("1")

    def user():
        bind(session)
        tune.report({"a": 1}, checkpoint=tune.Checkpoint.from_directory(str(src)))
        tune.report({"a": 2})
        session.reports.put(None)

    thread = threading.Thread(target=user)
    thread.start()
    first = session.reports.get(timeout=10)
    assert first.metrics == {"a": 1}
    assert first.checkpoint_dir_name == "checkpoint_000000"
    assert (tmp_path / "trial" / "checkpoint_000000" / "f").read_text() == "1"
    assert session.reports.empty()  # blocked in report() until resumed
    session.resume()
    assert session.reports.get(timeout=10).metrics == {"a": 2}
    session.resume()
    assert session.reports.get(timeout=10) is None
    thread.join(timeout=10)
    assert session.checkpoint.path.endswith("checkpoint_000000")


def test_report_rejects_non_dicts(tmp_path):
    session = Session(TrialInfo("t", "i", str(tmp_path), "e", {}), None)
    with pytest.raises(TypeError, match="dict"):
        session.report([1], None)  # type: ignore[arg-type]


def test_context_inside_a_session(tmp_path):
    info = TrialInfo("name", "tid", str(tmp_path), "exp", {"CPU": 2.0})
    bind(Session(info, None))
    try:
        ctx = tune.get_context()
        assert ctx.get_trial_name() == "name"
        assert ctx.get_trial_id() == "tid"
        assert ctx.get_trial_dir() == str(tmp_path)
        assert ctx.get_experiment_name() == "exp"
        assert ctx.get_world_size() == 1
        assert ctx.get_world_rank() == 0
        with pytest.warns(DeprecationWarning, match="ember.tune.get_context"):
            assert train.get_context().get_trial_resources() == {"CPU": 2.0}
    finally:
        bind(None)


def test_result_from_path(tmp_path):
    from ember.tune import trial_files

    trial_files.write_params(str(tmp_path), {"x": 1})
    (tmp_path / "checkpoint_000000").mkdir()
    trial_files.append_result(
        str(tmp_path),
        {"a": 1, "checkpoint_dir_name": "checkpoint_000000", "config": {"x": 1}},
    )
    trial_files.append_result(str(tmp_path), {"a": 2, "config": {"x": 1}})
    result = air.Result.from_path(str(tmp_path))
    assert result.metrics["a"] == 2
    assert result.config == {"x": 1}
    assert result.checkpoint.path.endswith("checkpoint_000000")
    assert list(result.metrics_dataframe["a"]) == [1, 2]
    header = (tmp_path / "progress.csv").read_text().splitlines()[0]
    assert header == "a,checkpoint_dir_name"
