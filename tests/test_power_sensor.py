"""Sensor characterization analysis on synthetic responses (the math) and the CLI without a GPU."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kernelprof.timeline.clock import Interval, Timeline
from kernelprof.sampling.replay import synthetic_trace
from kernelprof.methods.sensor import analyze, burst_response, counter_update_period, step_response, update_period

T0_US = 1_764_000_000_000_000
T0_NS = T0_US * 1000
ROOT = Path(__file__).resolve().parent.parent


def test_update_period_percentiles():
    t = T0_US + np.cumsum(np.r_[0, np.full(99, 20_000)])
    p = update_period(t)
    assert p.median_ms == pytest.approx(20.0) and p.p10_ms == pytest.approx(20.0) and p.n == 99
    assert update_period(t[:2]).median_ms is None


def test_counter_period_from_steps():
    t_ns = T0_NS + np.arange(0, 600) * 4_000_000  # a read every 4 ms
    e = np.floor(np.arange(600) * 4 / 100) * 70.0  # steps every 100 ms
    assert counter_update_period(t_ns, e).median_ms == pytest.approx(100.0, abs=4.0)


def test_step_response_of_a_boxcar_average_has_no_lag_beyond_half_its_window():
    t = T0_US + np.arange(-50, 100) * 20_000  # 20 ms samples, step at T0
    end = T0_US + 2_000_000
    win_end = (t - T0_US) / 1e6
    w = 100.0 + 500.0 * np.clip(win_end / 0.020, 0.0, 1.0)  # average over (t-20ms, t]
    r = step_response(t, w, T0_NS, end * 1000, window_s=0.020)
    assert r.baseline_w == pytest.approx(100.0) and r.busy_w == pytest.approx(600.0)
    assert r.t50_after_step_s == pytest.approx(0.010, abs=1e-6)
    assert r.lag_s == pytest.approx(0.0, abs=1e-6)


def test_burst_response_width_is_the_averaging_window():
    rng = np.random.default_rng(1)
    starts, t = [], 0.0
    while t < 6.0:
        starts.append(t)
        t += 0.005 + rng.uniform(0.080, 0.110)
    bursts_s = np.array([(s, s + 0.005) for s in starts])

    def power(x):
        on = np.zeros_like(x, dtype=bool)
        for a, b in bursts_s:
            on |= (x >= a) & (x < b)
        return np.where(on, 700.0, 120.0)

    tr = synthetic_trace(power, start_t_us=T0_US, duration_s=6.0, history_s=0.1)
    g = tr.gpus[0]
    bursts = [(T0_NS + int(a * 1e9), T0_NS + int(b * 1e9)) for a, b in bursts_s]
    r = burst_response(g.samples_t_us, g.samples_w, bursts)
    assert r.width_s == pytest.approx(0.020, abs=0.006)
    assert r.peak_excess_w == pytest.approx(580 * 0.005 / 0.020, rel=0.3)


def test_analyze_a_synthetic_characterization_run():
    # idle 0-2 s at 70 W, step 3-5 s at 600 W, idle after 5-7.5 s at 120 W, 5/95 bursts 8-11 s
    bursts = [(8.0 + 0.1 * i + 0.013 * (i % 7), 8.005 + 0.1 * i + 0.013 * (i % 7)) for i in range(29)]

    def power(x):
        p = np.where(x < 3.0, 70.0, 120.0)
        p = np.where((x >= 3.0) & (x < 5.0), 600.0, p)
        for a, b in bursts:
            p = np.where((x >= a) & (x < b), 700.0, p)
        return p

    tr = synthetic_trace(power, start_t_us=T0_US, duration_s=11.5, history_s=0.1)
    s = lambda x: T0_NS + int(x * 1e9)
    ivs = [Interval("idle_before", s(0), s(2)), Interval("step", s(3), s(5)), Interval("idle_after", s(5), s(7.5)),
           Interval("duty_5_95", s(8), s(11))]
    ivs += [Interval("burst", s(a), s(b), "burst", "duty_5_95/burst", 1) for a, b in bursts]
    rep = analyze(tr, Timeline(tuple(ivs)))
    samples = rep.source("samples")
    assert samples.period.median_ms == pytest.approx(20.0)
    assert samples.lag_s == pytest.approx(0.0, abs=0.005)
    assert rep.idle_before_work_w == pytest.approx(70.0, abs=1)
    assert rep.idle_after_work_w == pytest.approx(120.0, abs=1)
    assert rep.idle_before_work_kind.startswith("deep")
    assert rep.source("instant").period.median_ms == pytest.approx(100.0)
    prof = rep.to_profile()
    assert prof.source == "measured" and prof.samples_period_s == pytest.approx(0.020)


def test_kernelprof_sensor_without_a_gpu_exits_nonzero_with_one_sentence():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    r = subprocess.run([sys.executable, "-m", "kernelprof", "sensor"], capture_output=True, text=True,
                       cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert r.returncode == 3
    assert r.stderr.count("\n") == 1 and "needs a CUDA GPU" in r.stderr
    assert "Traceback" not in r.stderr


def test_characterize_stops_the_sampler_when_a_load_fails(monkeypatch):
    """A load that fails mid-run (out of memory, say) must not leave the sampler thread or process running."""
    import types

    import kernelprof.gpu.devices as devices
    import kernelprof.methods.sensor as sensor
    import kernelprof.sampling.runners as runners

    events = []

    class FakeSampler:
        def __init__(self, *a, **k):
            pass

        def start(self):
            events.append("start")
            return self

        def abort(self):
            events.append("abort")

    monkeypatch.setattr(devices, "require_gpu", lambda *a, **k: None)
    monkeypatch.setattr(devices, "gpu_facts", lambda *a, **k: types.SimpleNamespace(nvml_index=0, driver_version="x"))
    monkeypatch.setattr(runners, "PowerSampler", FakeSampler)

    def failing_drive(*a, **k):
        raise MemoryError("CUDA out of memory (test double)")

    monkeypatch.setattr(sensor, "_drive", failing_drive)
    with pytest.raises(MemoryError):
        sensor.characterize(0, save=False)
    assert events == ["start", "abort"]
