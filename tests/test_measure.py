"""The steady-state analysis on a synthetic trace (a test of the arithmetic, not a measurement)."""
from __future__ import annotations

import numpy as np
import pytest

from kernelprof.attribution.intervals import DEFAULT_SENSOR_PROFILE
from kernelprof.methods.steady_state import MeasureConfig, _median_ci, _result_from_trials, t95
from kernelprof.sampling.replay import synthetic_trace

T0_US = 1_790_000_000_000_000
BUSY_W, IDLE_W = 600.0, 120.0
CALL_S = 200e-6


def _trials(n=3, window_s=1.0, gap_s=0.5, first_s=0.3, chunk=50):
    """Trial records as measure_kernel's _one_trial returns them, on a made-up timeline."""
    trials, busy = [], []
    t = first_s
    for _ in range(n):
        anchor_ns = T0_US * 1000 + int(t * 1e9)
        ramp_ms, tail_ms = 250.0, 250.0
        steady_ms = window_s * 1e3 - ramp_ms
        n_chunks = int(steady_ms / 1e3 / (chunk * CALL_S))
        event_ms = [ramp_ms + j * chunk * CALL_S * 1e3 for j in range(n_chunks + 1)]
        end_ns = anchor_ns + int(window_s * 1e9)
        # Work runs on for the tail after the power window's last event, as in measure_kernel.
        power_end = int((steady_ms - tail_ms) / 1e3 / (chunk * CALL_S))
        trials.append({"anchor_ns": anchor_ns, "event_ms": event_ms, "chunk_units": [chunk] * n_chunks,
                       "end_ns": end_ns, "gap_s": gap_s, "power_end_index": power_end})
        busy.append((t, t + window_s))
        t += window_s + gap_s
    return trials, busy, t


def _power(busy, lag_s=DEFAULT_SENSOR_PROFILE.samples_lag_s):
    """The sensor's readings: busy/idle power seen `lag_s` late, as the attribution assumes a real one is."""
    def p(ts):
        out = np.full_like(ts, IDLE_W, dtype=float)
        for a, b in busy:
            out[(ts >= a + lag_s) & (ts < b + lag_s)] = BUSY_W
        return out
    return p


def test_energy_per_call_is_mean_power_times_time_per_call():
    trials, busy, end_s = _trials()
    trace = synthetic_trace(_power(busy), start_t_us=T0_US, duration_s=end_s + 0.2)
    m = _result_from_trials([(trials, trace)], t_unit=CALL_S, k=1, cfg=MeasureConfig(), name="t", flops=1e9,
                            min_bytes=1e6, dtype="bf16", sets=1, notes=[], wall0=0.0)
    assert m.time_per_call_s == pytest.approx(CALL_S, rel=1e-6)
    # The power window has work on both sides (the ramp before, the tail after): it is flat, and the
    # sample straddling the drop to idle (shifted by the sensor's lag) stays outside it.
    assert m.mean_power_w == pytest.approx(BUSY_W, rel=2e-4)
    assert m.energy_per_call_j == pytest.approx(BUSY_W * CALL_S, rel=2e-3)
    assert m.idle_power_w == pytest.approx(IDLE_W, rel=2e-3)
    assert m.dynamic_energy_per_call_j == pytest.approx((BUSY_W - IDLE_W) * CALL_S, rel=5e-3)
    assert len(m.trials) == 3 and m.energy_ci_j < 1e-3 * m.energy_per_call_j
    assert m.sm_clock_mhz == 1980.0 and all(t.sm_clock_mhz == 1980.0 for t in m.trials)  # the trace's clock
    assert "synthetic_trace" in {f.code for f in m.flags}


def test_batches_of_trials_combine():
    trials, busy, end_s = _trials(n=5)
    trace = synthetic_trace(_power(busy), start_t_us=T0_US, duration_s=end_s + 0.2)
    m = _result_from_trials([(trials[:3], trace), (trials[3:], trace)], t_unit=CALL_S, k=1, cfg=MeasureConfig(),
                            name="t", flops=1e9, min_bytes=1e6, dtype="bf16", sets=1, notes=[], wall0=0.0)
    assert [t.index for t in m.trials] == [0, 1, 2, 3, 4]


def test_ci_uses_student_t():
    med, half = _median_ci([1.0, 1.0, 1.0])
    assert (med, half) == (1.0, 0.0)
    med, half = _median_ci([1.0, 2.0, 3.0])
    assert half == pytest.approx(4.303 * 1.0 / np.sqrt(3))
    assert t95(1000) == 1.96 and t95(0) == np.inf


def test_config_validation():
    from kernelprof.errors import UsageError

    with pytest.raises(UsageError, match="window_s"):
        MeasureConfig(window_s=0.4)
    with pytest.raises(UsageError, match="min_trials"):
        MeasureConfig(min_trials=1)


def test_a_rate_above_the_datasheet_peak_is_flagged():
    trials, busy, end_s = _trials()
    trace = synthetic_trace(_power(busy), start_t_us=T0_US, duration_s=end_s + 0.2)
    # 1e12 FLOPs in 200 us is 5 PFLOP/s: more than an H100 can do in bf16 (989 TFLOP/s dense).
    m = _result_from_trials([(trials, trace)], t_unit=CALL_S, k=1, cfg=MeasureConfig(), name="t", flops=1e12,
                            min_bytes=1e6, dtype="bf16", sets=1, notes=[], wall0=0.0, gpu_name="NVIDIA H100 80GB HBM3")
    assert "impossible_rate" in {f.code for f in m.flags}
    ok = _result_from_trials([(trials, trace)], t_unit=CALL_S, k=1, cfg=MeasureConfig(), name="t", flops=1e11,
                             min_bytes=1e6, dtype="bf16", sets=1, notes=[], wall0=0.0, gpu_name="NVIDIA H100 80GB HBM3")
    assert "impossible_rate" not in {f.code for f in ok.flags}
