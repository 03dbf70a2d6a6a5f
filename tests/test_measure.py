"""The settled-state analysis on synthetic traces (tests of the arithmetic, not measurements)."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from kernelprof.attribution.intervals import DEFAULT_SENSOR_PROFILE
from kernelprof.errors import UsageError
from kernelprof.methods.steady_state_analysis import (KernelMeasurement, LaunchFacts, MeasureConfig, RunRecord, analyze_bursts,
                                       analyze_sustained)
from kernelprof.sampling.replay import synthetic_trace
from kernelprof.methods.settled import CallClock, mean_ci, mser_cut, t95, trend

T0_US = 1_790_000_000_000_000
IDLE_W = 120.0
CALL_S = 200e-6
RUN_START_S = 1.0  # the run starts 1 s into the trace, after an idle stretch
FACTS = LaunchFacts("t", 1e9, 1e6, "bf16", 1, 1, 0)


def _profile_power(profile):
    """A sensor that reads `profile(t_run_s)` during the run, `lag_s` late, and idle around it."""
    lag = DEFAULT_SENSOR_PROFILE.samples_lag_s

    def p(ts):
        rel = np.asarray(ts, dtype=float) - RUN_START_S - lag
        return np.where((rel >= 0) & (rel < RUN_S), profile(np.clip(rel, 0, None)), IDLE_W)
    return p


RUN_S = 4.0


def _record(run_s=RUN_S, segment_s=0.1):
    n = int(round(run_s / segment_s))
    per_seg = int(round(segment_s / CALL_S))
    ms = tuple(j * segment_s * 1e3 for j in range(n + 1))
    anchor_ns = T0_US * 1000 + int(RUN_START_S * 1e9)
    idle = (T0_US * 1000 + int(0.4 * 1e9), T0_US * 1000 + int(0.95 * 1e9))
    return RunRecord(anchor_ns, ms, (per_seg,) * n, idle)


def _trace(profile, pin_every_s=0.5, duration_s=RUN_START_S + RUN_S + 0.5):
    """Synthetic samples of `profile`, with the energy counter pinned every `pin_every_s` (exact integral)."""
    power = _profile_power(profile)
    tr = synthetic_trace(power, start_t_us=T0_US, duration_s=duration_s)
    pins_s = np.arange(0.05, duration_s, pin_every_s)
    fine = np.linspace(0.0, duration_s, 400_001)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (power(fine[1:]) + power(fine[:-1])) * np.diff(fine))])
    g = dataclasses.replace(tr.gpus[0], counter_t_us=T0_US + np.round(pins_s * 1e6).astype(np.int64),
                            counter_j=1000.0 + np.interp(pins_s, fine, cum),
                            counter_precise=np.ones(len(pins_s), bool))
    return dataclasses.replace(tr, gpus=(g,))


def _limiter(t):
    """The H200's transient after idle (SENSOR_FACTS): 721 W, then 664 W, then settled at 690 W."""
    return np.where(t < 0.5, 721.0, np.where(t < 1.0, 664.0, 690.0))


def test_the_transient_is_found_and_left_out():
    m = analyze_sustained(_record(), _trace(_limiter), MeasureConfig(), FACTS, wall0=0.0)
    assert m.state == "sustained" and m.energy_source == "energy_counter"
    assert 0.95 <= m.transient_s <= 1.15, "the settled stretch starts where the limiter settles"
    assert m.energy_per_call_j == pytest.approx(690.0 * CALL_S, rel=1e-3)
    assert m.time_per_call_s == pytest.approx(CALL_S, rel=1e-6)
    assert m.mean_power_w == pytest.approx(690.0, rel=1e-3)
    assert m.idle_power_w == pytest.approx(IDLE_W, rel=1e-3)
    assert m.dynamic_energy_per_call_j == pytest.approx((690.0 - IDLE_W) * CALL_S, rel=2e-3)
    assert abs(m.counter_vs_samples_pct) < 0.2
    assert "not_settled" not in m.flag_codes() and "synthetic_trace" in m.flag_codes()
    assert all(b.source == "energy_counter" for b in m.batches) and len(m.batches) >= 4


def test_a_flat_run_keeps_all_but_the_minimum_drop():
    m = analyze_sustained(_record(), _trace(lambda t: np.full_like(t, 600.0)), MeasureConfig(), FACTS, wall0=0.0)
    assert m.transient_s == pytest.approx(MeasureConfig().min_drop_s, abs=0.11)
    assert m.energy_per_call_j == pytest.approx(600.0 * CALL_S, rel=1e-3)
    assert m.energy_ci_j < 1e-3 * m.energy_per_call_j


def test_power_still_climbing_is_flagged_not_settled():
    m = analyze_sustained(_record(), _trace(lambda t: 500.0 + 50.0 * t), MeasureConfig(), FACTS, wall0=0.0)
    assert "not_settled" in m.flag_codes()
    assert m.drift_pct is not None and m.drift_pct > 1.0


def test_without_pinned_counter_readings_the_samples_give_the_figure():
    tr = _trace(_limiter)
    g = dataclasses.replace(tr.gpus[0], counter_precise=np.zeros(len(tr.gpus[0].counter_t_us), bool))
    m = analyze_sustained(_record(), dataclasses.replace(tr, gpus=(g,)), MeasureConfig(), FACTS, wall0=0.0)
    assert m.energy_source == "nvml_samples" and "counter_unavailable" in m.flag_codes()
    assert m.energy_per_call_j == pytest.approx(690.0 * CALL_S, rel=2e-3)


def test_bursts_include_the_transient():
    # Three bursts of 0.3 s, each after 1 s idle; the power of each is the limiter's first 0.3 s.
    recs, busy = [], []
    for i in range(3):
        start_s = 1.0 + i * 1.5
        n = 6
        ms = tuple(j * 50.0 for j in range(n + 1))
        idle = (T0_US * 1000 + int((start_s - 0.8) * 1e9), T0_US * 1000 + int((start_s - 0.05) * 1e9))
        recs.append(RunRecord(T0_US * 1000 + int(start_s * 1e9), ms, (250,) * n, idle))
        busy.append(start_s)
    lag = DEFAULT_SENSOR_PROFILE.samples_lag_s

    def power(ts):
        out = np.full_like(np.asarray(ts, float), IDLE_W)
        for s in busy:
            out = np.where((ts >= s + lag) & (ts < s + lag + 0.3), 721.0, out)
        return out
    tr = synthetic_trace(power, start_t_us=T0_US, duration_s=5.5)
    cfg = MeasureConfig(state="burst", burst_s=0.25, burst_trials=3)
    m = analyze_bursts(recs, tr, cfg, FACTS, wall0=0.0)
    assert m.state == "burst" and len(m.batches) == 3
    assert m.energy_per_call_j == pytest.approx(721.0 * CALL_S, rel=2e-3)
    assert m.idle_power_w == pytest.approx(IDLE_W, rel=1e-3)


def test_measurement_round_trips_through_json():
    m = analyze_sustained(_record(), _trace(_limiter), MeasureConfig(), FACTS, wall0=0.0)
    back = KernelMeasurement.from_json(json.loads(json.dumps(m.to_json())))
    assert back.to_json() == m.to_json() and back.batches == m.batches and back.flags == m.flags


def test_mser_finds_a_step_and_ignores_noise():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.full(8, 10.0), np.full(40, 5.0)]) + rng.normal(0, 0.05, 48)
    assert 8 <= mser_cut(x) <= 16  # noise can favour a slightly later cut, never an earlier one
    assert mser_cut(5.0 + rng.normal(0, 0.05, 48)) < 5
    assert mser_cut([1.0, 2.0]) == 0  # too short to say


def test_trend_and_interval_helpers():
    tr = trend([0, 1, 2, 3], [100, 101, 102, 103])
    assert tr.drift_pct == pytest.approx(3.0 / 101.5 * 100) and tr.drift_se_pct == pytest.approx(0.0, abs=1e-9)
    assert tr.significant(0.5) and not trend([0, 1, 2, 3], [100, 100, 100, 100]).significant(0.5)
    m, half = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and half == pytest.approx(4.303 / np.sqrt(3))
    assert t95(1000) == 1.96 and t95(0) == np.inf
    c = CallClock([0, 100, 200], [10, 30])
    assert c.calls_at(50) == 5 and c.calls_between(50, 150) == 20


@pytest.mark.parametrize("kw, match", [
    ({"state": "warm"}, "state must be"), ({"run_s": 0}, "run_s"), ({"max_run_s": 1.0}, "max_run_s"),
    ({"min_settled_s": 10.0}, "does not fit"), ({"batch_s": 0.05}, "batch_s"), ({"burst_trials": 1}, "burst_trials"),
    ({"run_s": float("nan")}, "run_s"), ({"target_rel_ci": True}, "target_rel_ci"), ({"check_s": 0}, "check_s"),
])
def test_config_validation(kw, match):
    with pytest.raises(UsageError, match=match):
        MeasureConfig(**kw)


def test_a_rate_above_the_datasheet_peak_is_flagged():
    facts = dataclasses.replace(FACTS, flops=1e12, gpu_name="NVIDIA H100 80GB HBM3")  # 5 PFLOP/s in 200 us
    m = analyze_sustained(_record(), _trace(_limiter), MeasureConfig(), facts, wall0=0.0)
    assert "impossible_rate" in m.flag_codes()
    ok = analyze_sustained(_record(), _trace(_limiter), MeasureConfig(), dataclasses.replace(facts, flops=1e11),
                           wall0=0.0)
    assert "impossible_rate" not in ok.flag_codes()


def test_measure_kernel_checks_its_arguments_before_the_gpu():
    from kernelprof.methods.steady_state import measure_kernel

    with pytest.raises(UsageError, match="min_bytes"):
        measure_kernel(lambda: None, flops=1.0)
    with pytest.raises(UsageError, match="flops"):
        measure_kernel(lambda: None, flops=-1.0, min_bytes=0)
    with pytest.raises(UsageError, match="callable"):
        measure_kernel(3, flops=1.0, min_bytes=0)
