"""Attribution math on synthetic traces (tests of the integration, never measurements)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernelprof.attribution.intervals import (SHORT_INTERVAL_MESSAGE, AttributionConfig, PowerFunction, SensorProfile,
                                    attribute, load_sensor_profile)
from kernelprof.timeline.clock import Interval
from kernelprof.sampling.powertrace import Sources
from kernelprof.sampling.replay import synthetic_trace

T0_US = 1_764_000_000_000_000  # an epoch-microsecond origin like NVML's
T0_NS = T0_US * 1000
PROFILE = SensorProfile()


def _samples(draw_n, seed, period_us=20_000, jitter_us=3_000):
    rng = np.random.default_rng(seed)
    t = T0_US + np.cumsum(period_us + rng.integers(-jitter_us, jitter_us + 1, draw_n))
    w = rng.uniform(50.0, 900.0, draw_n)
    return t.astype(np.int64), w


@settings(max_examples=200, deadline=None)
@given(n=st.integers(5, 300), seed=st.integers(0, 2**31 - 1), cuts=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12),
       lag_ms=st.floats(0.0, 30.0))
def test_adjacent_intervals_add_up_to_the_whole(n, seed, cuts, lag_ms):
    t, w = _samples(n, seed)
    f = PowerFunction.from_windows(t, w, period_s=0.020, lag_s=lag_ms / 1e3)
    a, b = int(t[0]) * 1000 - 50_000_000, int(t[-1]) * 1000 + 50_000_000
    edges = sorted({a, b, *(a + int(c * (b - a)) for c in cuts)})
    parts = sum(f.energy_j(x, y) for x, y in zip(edges[:-1], edges[1:]))
    whole = f.energy_j(a, b)
    assert parts == pytest.approx(whole, rel=1e-9, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(3, 200), seed=st.integers(0, 2**31 - 1))
def test_whole_span_integral_is_sum_of_sample_times_window(n, seed):
    t, w = _samples(n, seed)
    f = PowerFunction.from_windows(t, w, period_s=0.020, gap_factor=10.0)
    d = np.diff(t) / 1e6
    expected = w[0] * 0.020 + float(np.sum(w[1:] * d))
    got = f.energy_j(int(t[0]) * 1000 - 20_000_000, int(t[-1]) * 1000)
    assert got == pytest.approx(expected, rel=1e-9)


@settings(max_examples=100, deadline=None)
@given(p=st.floats(1.0, 1000.0), dur_s=st.floats(0.05, 5.0), lag_ms=st.floats(0.0, 40.0))
def test_constant_power_gives_power_times_time(p, dur_s, lag_ms):
    t = T0_US + np.arange(0, 400) * 20_000
    f = PowerFunction.from_windows(t, np.full(len(t), p), period_s=0.020, lag_s=lag_ms / 1e3)
    t0 = T0_NS + 500_000_000
    t1 = t0 + int(dur_s * 1e9)
    assert f.energy_j(t0, t1) == pytest.approx(p * (t1 - t0) / 1e9, rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(lag_ms=st.floats(0.0, 50.0), seed=st.integers(0, 1000))
def test_lag_shifts_the_function_earlier(lag_ms, seed):
    t, w = _samples(100, seed)
    lag_ns = int(lag_ms * 1e6)
    f0 = PowerFunction.from_windows(t, w, period_s=0.020, origin_us=T0_US)
    fl = PowerFunction.from_windows(t, w, period_s=0.020, lag_s=lag_ns / 1e9, origin_us=T0_US)
    a, b = T0_NS + 300_000_000, T0_NS + 1_100_000_000
    assert fl.energy_j(a - lag_ns, b - lag_ns) == pytest.approx(f0.energy_j(a, b), rel=1e-6, abs=1e-6)


def test_a_gap_becomes_a_hole_filled_with_the_neighbours_mean():
    t = T0_US + np.array([0, 20_000, 40_000, 140_000, 160_000], np.int64)  # 80 ms missing before 140
    w = np.array([100.0, 100.0, 100.0, 300.0, 300.0])
    f = PowerFunction.from_windows(t, w, period_s=0.020, origin_us=T0_US)
    hole = f.hole_s(T0_NS, T0_NS + 160_000_000)
    assert hole == pytest.approx(0.080)
    # [40, 120] ms is the hole at 200 W, [120, 140] is the 300 W sample's own window
    assert f.energy_j(T0_NS + 40_000_000, T0_NS + 140_000_000) == pytest.approx(0.080 * 200 + 0.020 * 300)


def _trace(power=lambda t: np.full_like(t, 300.0), **kw):
    return synthetic_trace(power, start_t_us=T0_US, duration_s=3.0, **kw)


def test_square_wave_energy_matches_the_exact_integral():
    tr = _trace(lambda t: np.where((t % 0.1) < 0.05, 600.0, 100.0))
    a = attribute(tr, [Interval("x", T0_NS + 200_000_000, T0_NS + 2_200_000_000)], profiles=PROFILE)
    # 20 whole periods of 0.05 s at 600 W and 0.05 s at 100 W
    assert a.intervals[0].energy_j == pytest.approx(20 * (0.05 * 600 + 0.05 * 100), rel=1e-3)
    assert a.intervals[0].method == "nvml_samples"
    assert "synthetic_trace" in a.intervals[0].flag_codes()


def test_counter_cross_check_over_the_marks_window():
    tr = _trace()
    a = attribute(tr, [], profiles=PROFILE)
    c = a.window.gpus[0].counter
    assert c is not None and c.window_s == pytest.approx(3.0)
    assert c.counter_energy_j == pytest.approx(900.0, rel=1e-3)
    assert c.diff_pct == pytest.approx(0.0, abs=0.2)


def test_short_interval_is_flagged_with_the_steady_state_advice():
    a = attribute(_trace(), [Interval("k", T0_NS + 1_000_000_000, T0_NS + 1_030_000_000)], profiles=PROFILE)
    flags = {f.code: f.message for f in a.intervals[0].flags}
    assert flags["short_interval"] == SHORT_INTERVAL_MESSAGE
    assert a.intervals[0].gpus[0].counter is None  # far under five counter periods
    assert "counter" in a.intervals[0].gpus[0].counter_note


def test_throttle_clocks_and_other_processes_are_flagged():
    tr = _trace(clock_event_reasons=0x4 | 0x1)
    g = tr.gpus[0]
    g.sm_clock_mhz[10:] = 1600.0
    g.other_processes[:] = 1
    a = attribute(tr, [Interval("x", T0_NS, T0_NS + 2_000_000_000)], profiles=PROFILE)
    flags = {f.code: f.message for f in a.intervals[0].flags}
    assert "sw_power_cap" in flags["throttled"] and "gpu_idle" not in flags["throttled"]
    assert "1600" in flags["clocks_moved"]
    assert "other_processes" in flags


def test_idle_reason_alone_is_not_a_throttle():
    a = attribute(_trace(clock_event_reasons=0x1), [Interval("x", T0_NS, T0_NS + 10**9)], profiles=PROFILE)
    assert "throttled" not in a.intervals[0].flag_codes()


def test_without_buffered_samples_the_instant_field_is_used_and_said():
    tr = _trace(sources=Sources(instant=True, average=True, counter=True, missing={"samples": "not supported"}))
    a = attribute(tr, [Interval("x", T0_NS + 500_000_000, T0_NS + 2_500_000_000)], profiles=PROFILE)
    iv = a.intervals[0]
    assert iv.method == "instant_field"
    assert iv.energy_j == pytest.approx(600.0, rel=0.06)
    assert "fallback_method" in iv.flag_codes()


def test_interval_outside_the_trace_is_flagged():
    a = attribute(_trace(), [Interval("x", T0_NS + 2_000_000_000, T0_NS + 5_000_000_000)], profiles=PROFILE)
    assert "outside_trace" in a.intervals[0].flag_codes()


def test_default_profile_says_it_was_not_measured(tmp_path, monkeypatch):
    monkeypatch.setenv("KERNELPROF_CACHE", str(tmp_path))
    p = load_sensor_profile("GPU-abc", "580.1")
    assert p.source == "default" and "not measured" in p.note
    a = attribute(_trace(), [], driver="580.1")
    assert any("not measured" in n for n in a.notes)


def test_measured_profile_is_found_by_uuid_and_driver(tmp_path, monkeypatch):
    from kernelprof.attribution.intervals import sensor_profile_path
    from kernelprof.cache import write_cached

    monkeypatch.setenv("KERNELPROF_CACHE", str(tmp_path))
    prof = SensorProfile(samples_lag_s=0.004, source="measured", note="measured", gpu_uuid="GPU-synthetic-0")
    write_cached(sensor_profile_path("GPU-synthetic-0", "580.1"), {"profile": prof.to_json()})
    assert load_sensor_profile("GPU-synthetic-0", "580.1").samples_lag_s == 0.004
    assert load_sensor_profile("GPU-synthetic-0", None).source == "measured"  # driver unknown: newest
    a = attribute(_trace(), [], driver="580.1")
    assert a.sensor_profiles[0].source == "measured" and not [n for n in a.notes if "sensor lag" in n]


def test_config_counter_min_window():
    cfg = AttributionConfig(counter_min_periods=50.0, counter_min_periods_precise=50.0)  # 5 s: longer than the 3 s trace
    a = attribute(_trace(), [], profiles=PROFILE, config=cfg)
    assert a.window.gpus[0].counter is None


def test_a_single_skipped_sample_in_a_long_interval_is_not_flagged():
    from kernelprof.attribution.intervals import attribute
    from kernelprof.timeline.clock import Interval

    tr = _trace()
    g = tr.gpus[0]
    drop = np.ones(len(g.samples_t_us), bool)
    drop[int(np.argmin(np.abs(g.samples_t_us - (T0_US + 1_500_000))))] = False  # one 20 ms sample skipped at 1.5 s
    g2 = type(g)(**{**g.__dict__, "samples_t_us": g.samples_t_us[drop], "samples_w": g.samples_w[drop]})
    tr2 = type(tr)(tr.mode, tr.start_t_us, tr.stop_t_us, tr.own_pid, (g2,), provenance="synthetic")
    iv = Interval("long", T0_US * 1000 + 200_000_000, T0_US * 1000 + 2_800_000_000)
    short = Interval("short", T0_US * 1000 + 1_450_000_000, T0_US * 1000 + 1_550_000_000)
    a = attribute(tr2, [iv, short])
    assert "sample_gap" not in a.intervals[0].flag_codes()  # 20 ms of 2.6 s
    assert "sample_gap" in a.intervals[1].flag_codes()  # 20 ms of 100 ms


@pytest.mark.parametrize("window_us, precise, checked", [
    (399_990, True, True),    # 4 updates between marks pinned to updates: enough
    (299_990, True, True),    # 3, as the host clock measures 3 x 100 ms a little short
    (199_990, True, False),   # 2: too few even when pinned
    (399_990, False, False),  # unpinned marks need 5
    (499_990, False, True),   # 0.49999 s counts as the 5 updates it spans
])
def test_counter_window_counts_whole_updates_and_pinned_marks_need_fewer(window_us, precise, checked):
    from dataclasses import replace

    tr = _trace()
    g = tr.gpus[0]
    t = T0_US + np.array([1_000_000, 1_000_000 + window_us], dtype=np.int64)
    g2 = replace(g, counter_t_us=t, counter_j=np.array([1000.0, 1000.0 + 300.0 * window_us / 1e6]),
                 counter_precise=np.array([precise, precise]))
    tr2 = replace(tr, gpus=(g2,))
    a = attribute(tr2, [Interval("x", T0_NS + 1_000_000_000, T0_NS + 1_000_000_000 + window_us * 1000)],
                  profiles=PROFILE)
    c = a.intervals[0].gpus[0].counter
    assert (c is not None) == checked
    if checked:
        assert c.diff_pct == pytest.approx(0.0, abs=0.5)
