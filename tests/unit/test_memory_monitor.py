"""The memory monitor's pure core: samples, the kill choice, the gate, the report."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, strategies as st

from ember import exceptions as ex
from ember.node.memory_monitor import (
    REFRESH_ENV,
    THRESHOLD_ENV,
    VICTIM_GRACE_S,
    Candidate,
    KillGate,
    MemoryMonitor,
    MemorySample,
    MonitorSettings,
    choose_victim,
    oom_report,
    parse_cgroup,
)
from ember.protocol.messages import WorkerDeathReply
from ember.runtime.worker_deaths import death_error, retry_reason

GB = 1024**3


def cand(pid: int, owner: object, t: float, retriable: bool = True) -> Candidate:
    return Candidate(
        pid=pid, retriable=retriable, owner=owner, granted_at=t, name=f"t{pid}"
    )


# -- settings -------------------------------------------------------------------------
def test_settings_default_to_rays_values() -> None:
    assert MonitorSettings.from_env({}) == MonitorSettings(
        refresh_ms=250, threshold=0.95
    )


def test_settings_read_the_environment_and_zero_turns_it_off() -> None:
    s = MonitorSettings.from_env({REFRESH_ENV: "0", THRESHOLD_ENV: "0.5"})
    assert (s.refresh_ms, s.threshold) == (0, 0.5)
    monitor = MemoryMonitor(s, list, lambda c, d: True)
    assert not monitor.enabled


@pytest.mark.parametrize(
    "env", [{THRESHOLD_ENV: "1.5"}, {THRESHOLD_ENV: "0"}, {REFRESH_ENV: "-1"}]
)
def test_settings_out_of_range_are_refused_naming_the_variable(
    env: dict[str, str],
) -> None:
    with pytest.raises(ValueError, match="EMBER_MEMORY"):
        MonitorSettings.from_env(env)


# -- cgroup v2 ------------------------------------------------------------------------
def files(tree: dict[str, str]):
    return tree.get


def test_cgroup_v2_limit_and_usage_of_the_daemons_cgroup() -> None:
    tree = {
        "/sys/fs/cgroup/user.slice/ember/memory.max": "1073741824\n",
        "/sys/fs/cgroup/user.slice/ember/memory.current": "536870912\n",
        "/sys/fs/cgroup/user.slice/ember/memory.stat": "anon 1\ninactive_file 134217728\n",
    }
    s = parse_cgroup("0::/user.slice/ember\n", files(tree))
    assert s == MemorySample(
        used_bytes=512 * 2**20 - 128 * 2**20, total_bytes=GB, source="cgroup"
    )
    assert s.fraction == pytest.approx(0.375)


def test_cgroup_root_and_unlimited_and_v1_fall_back_to_the_machine() -> None:
    root = {
        "/sys/fs/cgroup/memory.max": "2048",
        "/sys/fs/cgroup/memory.current": "1024",
    }
    assert parse_cgroup("0::/\n", files(root)) == MemorySample(1024, 2048, "cgroup")
    unlimited = {
        "/sys/fs/cgroup/memory.max": "max\n",
        "/sys/fs/cgroup/memory.current": "1",
    }
    assert parse_cgroup("0::/\n", files(unlimited)) is None
    assert parse_cgroup("4:memory:/docker/x\n", files(root)) is None  # v1 only
    assert parse_cgroup("0::/gone\n", files(root)) is None  # files missing


# -- the kill choice -------------------------------------------------------------------
def test_retriable_work_is_killed_before_non_retriable_even_if_older() -> None:
    old_retriable = cand(1, "a", t=1.0)
    new_fixed = cand(2, "b", t=9.0, retriable=False)
    assert choose_victim([new_fixed, old_retriable]) is old_retriable
    assert (
        choose_victim([new_fixed]) is new_fixed
    )  # non-retriable only as a last resort


def test_the_newest_lease_of_the_chosen_group_goes_first() -> None:
    ws = [cand(1, "a", 1.0), cand(2, "a", 3.0), cand(3, "a", 2.0)]
    assert choose_victim(ws).pid == 2


def test_the_greedy_owner_loses_its_tasks_before_anyone_elses() -> None:
    greedy = [cand(1, "greedy", 1.0), cand(2, "greedy", 2.0), cand(3, "greedy", 3.0)]
    other = cand(4, "other", 10.0)  # the newest lease of all, but its owner's only one
    assert choose_victim([other, *greedy]).pid == 3


def test_equal_groups_the_newest_group_goes_first() -> None:
    a = [cand(1, "a", 1.0), cand(2, "a", 8.0)]
    b = [cand(3, "b", 5.0), cand(4, "b", 6.0)]
    assert choose_victim(a + b).pid == 4  # b started later (5 > 1)


def test_all_non_retriable_workers_form_one_group() -> None:
    ws = [cand(1, "a", 1.0, False), cand(2, "b", 2.0, False), cand(3, "c", 3.0)]
    # two non-retriable (one group) vs one retriable: retriable still first
    assert choose_victim(ws).pid == 3
    assert choose_victim(ws[:2]).pid == 2
    assert choose_victim([]) is None


# -- the gate ---------------------------------------------------------------------------
def test_gate_kills_above_threshold_then_waits_for_the_victim_to_exit() -> None:
    gate = KillGate(0.8)
    low, high = MemorySample(70, 100, "system"), MemorySample(85, 100, "system")
    assert not gate.due(low, 0.0)
    assert gate.due(high, 0.0)
    gate.killed(42, 0.0)
    assert not gate.due(high, 1.0)  # victim 42 still alive: its memory is not back yet
    gate.exited(7)
    assert not gate.due(high, 1.0)
    gate.exited(42)
    assert gate.due(high, 1.0)
    gate.killed(43, 2.0)
    assert gate.due(
        high, 2.0 + VICTIM_GRACE_S
    )  # a victim that never exits stops blocking
    assert gate.kills == 2


def test_monitor_check_kills_the_chosen_worker_with_an_oom_cause() -> None:
    killed: list[tuple[int, WorkerDeathReply]] = []
    samples = iter([MemorySample(99, 100, "system"), MemorySample(99, 100, "system")])
    monitor = MemoryMonitor(
        MonitorSettings(refresh_ms=250, threshold=0.9),
        lambda: [cand(5, "a", 1.0), cand(6, "a", 2.0)],
        lambda c, d: killed.append((c.pid, d)) or True,
        sample=lambda: next(samples),
        processes=lambda: [(6, 3 * GB, "python -m ember.worker")],
    )

    async def two_checks() -> tuple[bool, bool]:
        return await monitor.check(), await monitor.check()

    assert asyncio.run(two_checks()) == (True, False)  # the second waits for pid 6
    ((pid, death),) = killed
    assert pid == 6
    assert death.kind == "oom"
    assert monitor.kills == 1
    assert "memory monitor" in death.message
    assert "0.990" in death.message


# -- the report and the user's errors -----------------------------------------------------
def test_oom_report_names_task_usage_threshold_processes_and_knobs() -> None:
    text = oom_report(
        MemorySample(int(7.5 * GB), 8 * GB, "cgroup"),
        0.9,
        Candidate(pid=1234, retriable=True, owner="a", granted_at=0, name="hog"),
        [(1234, 6 * GB, "ember::hog"), (99, GB, "postgres")],
    )
    for part in (
        "1234",
        "'hog'",
        "7.50GB / 8.00GB",
        "0.938",
        "0.900",
        "cgroup",
        "6.00\tember::hog",
        "postgres",
        THRESHOLD_ENV,
        REFRESH_ENV,
        "memory=",
    ):
        assert part in text, part


def test_death_errors_name_oom_and_signals() -> None:
    oom = death_error("hog", WorkerDeathReply(kind="oom", message="REPORT"))
    assert isinstance(oom, ex.OutOfMemoryError)
    assert "'hog'" in str(oom)
    assert "REPORT" in str(oom)
    seg = death_error(
        "f", WorkerDeathReply(kind="signal", signal="SIGSEGV", message="x")
    )
    assert isinstance(seg, ex.WorkerCrashedError)
    assert "killed by SIGSEGV" in str(seg)
    code = death_error(
        "f", WorkerDeathReply(kind="exit", exit_code=3, message="exit code 3")
    )
    assert "exit code 3" in str(code)
    assert isinstance(death_error("f", None), ex.WorkerCrashedError)
    assert "memory monitor" in retry_reason(WorkerDeathReply(kind="oom"))


def test_death_of_a_worker_reads_the_signal_from_its_exit_status() -> None:
    from ember.node.worker_pool import WorkerHandle, WorkerPool

    async def deaths() -> list[WorkerDeathReply]:
        out = []
        for code in (-9, -11, 3):
            fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            fut.set_result(code)
            out.append(WorkerPool.death_of(WorkerHandle(10, fut, "")))
        h = WorkerHandle(11, asyncio.get_running_loop().create_future(), "")
        h.death = WorkerDeathReply(kind="oom", message="m")
        out.append(WorkerPool.death_of(h))  # the daemon's own cause wins
        return out

    kill, segv, code, oom = asyncio.run(deaths())
    assert (kill.kind, kill.signal) == ("signal", "SIGKILL")
    assert segv.signal == "SIGSEGV"
    assert "SIGSEGV" in segv.message
    assert (code.kind, code.exit_code) == ("exit", 3)
    assert oom.kind == "oom"


@given(
    st.lists(
        st.tuples(st.sampled_from("abc"), st.floats(0, 100), st.booleans()),
        min_size=1,
        max_size=12,
    )
)
def test_choice_properties(specs: list[tuple[str, float, bool]]) -> None:
    ws = [cand(i, owner, t, retriable) for i, (owner, t, retriable) in enumerate(specs)]
    victim = choose_victim(ws)
    assert victim is not None
    if any(w.retriable for w in ws):
        assert victim.retriable  # non-retriable work only when nothing else is left
        peers = [w for w in ws if w.retriable and w.owner == victim.owner]
    else:
        peers = ws
    assert victim.granted_at == max(w.granted_at for w in peers)  # newest of its group
    sizes = {
        w.owner: sum(1 for x in ws if x.retriable and x.owner == w.owner)
        for w in ws
        if w.retriable
    }
    if victim.retriable:
        assert len(peers) == max(sizes.values())  # the largest owner group
