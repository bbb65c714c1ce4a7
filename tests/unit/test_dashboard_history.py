"""The dashboard's history: figures from two readings, the ring buffer, the JSON series."""

from __future__ import annotations

from ember.dashboard.history import (
    SERIES,
    History,
    cluster_point,
    point,
    process_cpu_percent,
)
from ember.protocol.messages import ProcessStats, SystemStatsReply


def reading(t: float, busy: float, total: float, sent: int = 0, recv: int = 0, **kw):
    base = {
        "node_id": b"\x01" * 28,
        "time_s": t,
        "cpu_count": 2,
        "cpu_busy_s": busy,
        "cpu_total_s": total,
        "mem_total": 8 << 30,
        "mem_used": 2 << 30,
        "disk_total": 100 << 30,
        "disk_used": 40 << 30,
        "net_sent": sent,
        "net_recv": recv,
        "store_used": 10 << 20,
        "store_total": 100 << 20,
        "store_spilled": 1 << 20,
    }
    base.update(kw)
    return SystemStatsReply(**base)


def test_cpu_and_network_are_rates_between_two_readings():
    a = reading(100.0, busy=50.0, total=200.0, sent=1000, recv=5000)
    b = reading(105.0, busy=57.5, total=210.0, sent=6000, recv=5000)
    p = point(a, b)
    assert p.cpu_percent == 75.0  # 7.5 of 10 CPU seconds busy
    assert p.net_tx_bps == 1000.0
    assert p.net_rx_bps == 0.0
    assert (p.mem_used, p.object_store_total, p.object_store_spilled) == (
        2 << 30,
        100 << 20,
        1 << 20,
    )


def test_first_reading_gives_cpu_since_boot_and_no_rates():
    p = point(None, reading(1.0, busy=30.0, total=120.0, sent=10**9, recv=10**9))
    assert p.cpu_percent == 25.0
    assert p.net_rx_bps == p.net_tx_bps == 0.0


def test_counters_that_went_back_give_zero_not_negative():
    a = reading(1.0, busy=10.0, total=20.0, sent=5000)
    b = reading(2.0, busy=11.0, total=22.0, sent=100)  # counters reset (reboot, wrap)
    assert point(a, b).net_tx_bps == 0.0


def test_process_cpu_percent_is_per_pid_between_readings():
    a = reading(10.0, 1, 2, processes=[ProcessStats(pid=7, cpu_s=1.0)])
    b = reading(
        12.0,
        1,
        2,
        processes=[ProcessStats(pid=7, cpu_s=2.0), ProcessStats(pid=8, cpu_s=9.0)],
    )
    assert process_cpu_percent(a, b) == {7: 50.0, 8: 0.0}
    assert process_cpu_percent(None, b) == {7: 0.0, 8: 0.0}


def test_cluster_figures_are_sums_and_a_cpu_mean_weighted_by_cpus():
    small = point(None, reading(1.0, busy=0.0, total=10.0, cpu_count=1))
    big = point(None, reading(1.0, busy=10.0, total=10.0, cpu_count=3))
    row = cluster_point([small, big])
    assert row["cpu_percent"] == 75.0
    assert row["mem_used"] == 2 * (2 << 30)
    assert set(row) == set(SERIES)


def test_history_keeps_one_hour_of_ticks_and_answers_a_window():
    h = History(interval_s=5.0, span_s=20.0)  # four ticks
    for i in range(6):
        t = 1000.0 + 5 * i
        h.add(int(t * 1000), {"aa": reading(t, busy=i, total=10 * (i + 1))})
    assert len(h.ticks) == 4
    out = h.query(seconds=3600, now_ms=int(1025.0 * 1000))
    assert out["interval_s"] == 5.0
    assert out["t"] == [1010_000, 1015_000, 1020_000, 1025_000]
    assert len(out["cpu_percent"]) == 4
    assert list(out["nodes"]) == ["aa"]
    assert out["nodes"]["aa"]["mem_used"] == [2 << 30] * 4
    recent = h.query(seconds=6, now_ms=int(1025.0 * 1000))
    assert recent["t"] == [1020_000, 1025_000]


def test_a_node_missing_from_a_tick_has_gaps_and_its_readings_are_dropped():
    h = History(interval_s=1.0)
    h.add(1000, {"aa": reading(1.0, 1, 2), "bb": reading(1.0, 1, 2)})
    h.add(2000, {"aa": reading(2.0, 1, 3)})
    out = h.query(3600, 2000)
    assert out["nodes"]["bb"]["cpu_percent"][1] is None
    assert out["mem_used"] == [2 * (2 << 30), 2 << 30]
    assert h.latest("bb") is not None  # its last point stays for its row
    try:
        h.readings("bb")
    except KeyError:
        pass
    else:
        raise AssertionError("readings of a node absent from the last tick")
