"""The Profiler API's GPU-less parts: saving and reloading a run, errors, the lazy export."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kernelprof.attribution.intervals import SensorProfile, attribute
from kernelprof.timeline.clock import ClockAnchor, Interval, Timeline, fit_clock
from kernelprof.errors import NoGPUError, RunFileError
from kernelprof.profiler import Profiler, build_result, load_profile, save_profile
from kernelprof.sampling.replay import synthetic_trace

T0_US = 1_764_000_000_000_000
T0_NS = T0_US * 1000
ROOT = Path(__file__).resolve().parent.parent


def _phased():
    levels = [120, 300, 700, 500, 200, 650, 150, 400, 600, 250]  # W, one per 0.3 s phase

    def power(t):
        k = np.clip((t // 0.3).astype(int), 0, 9)
        return np.asarray(levels, float)[k]

    tr = synthetic_trace(power, start_t_us=T0_US, duration_s=3.0)
    phases = tuple(Interval(f"p{i}", T0_NS + i * 300_000_000, T0_NS + (i + 1) * 300_000_000) for i in range(10))
    tl = Timeline(phases, clock_fit=fit_clock([ClockAnchor(0.0, T0_NS)]))
    window = Interval("window", T0_NS, T0_NS + 3_000_000_000, kind="window")
    return tr, tl, window, levels


def test_save_and_load_profile_rebuilds_the_same_result(tmp_path):
    tr, tl, window, levels = _phased()
    prof = SensorProfile()
    res = build_result(attribute(tr, tl, window=window, profiles=prof), tr)
    path = save_profile(tmp_path / "run.json", tr, tl, window, [prof], res, environment={"host": "test"})
    back = load_profile(path)
    assert [p.energy_j for p in back.phases] == pytest.approx([p.energy_j for p in res.phases], rel=1e-12)
    assert back.total.energy_j == pytest.approx(res.total.energy_j)
    assert back.provenance == "synthetic"
    # phases add up to the whole window, and each is its level x 0.3 s (edges blur one 20 ms window)
    assert sum(p.energy_j for p in back.phases) == pytest.approx(back.total.energy_j, rel=1e-9)
    for p, lv in zip(back.phases[1:-1], levels[1:-1]):
        assert p.time_s == pytest.approx(0.3)
    assert back.total.energy_counter_j == pytest.approx(sum(0.3 * lv for lv in levels), rel=1e-3)
    assert back.total.counter_diff_pct == pytest.approx(0.0, abs=0.5)
    assert back.phase("p3").energy_counter_j is None and back.phase("p3").counter_note


def test_load_profile_rejects_other_kinds(tmp_path):
    from kernelprof.outputs.runfile import save_run

    path = save_run(tmp_path / "x.json", "sensor", {"a": 1}, environment={})
    with pytest.raises(RunFileError, match="expected profile"):
        load_profile(path)


def test_profiler_without_gpu_raises_one_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(NoGPUError, match="needs a CUDA GPU"):
        with Profiler(gpus=[0]):
            pass


def test_phase_outside_the_with_block_is_a_usage_error():
    from kernelprof.errors import UsageError

    with pytest.raises(UsageError):
        with Profiler().phase("x"):
            pass


def test_import_kernelprof_stays_light():
    code = ("import sys, kernelprof; heavy = [m for m in ('torch', 'numpy', 'kernelprof.sampling.core', 'kernelprof.sampling.runners') if m in sys.modules];"
            "print(heavy); kernelprof.Profiler; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "[]"


class _FakeEvent:
    """A CUDA event stand-in stamped with the host clock (plumbing test only)."""

    def __init__(self, enable_timing=True):
        self.t_ns = None

    def record(self, stream=None):
        self.t_ns = __import__("time").time_ns()

    def synchronize(self):
        pass

    def elapsed_time(self, other):
        return (other.t_ns - self.t_ns) / 1e6


def test_profiler_plumbing_with_fake_cuda_and_a_replayed_trace(monkeypatch, tmp_path):
    """The whole Profiler flow (events, anchors, sampler, attribution, save/load) without a GPU:
    CUDA is faked and the power comes from a synthetic trace replayed in real time."""
    import time
    import types

    from kernelprof.gpu import devices
    from kernelprof.gpu.devices import GPUFacts
    from kernelprof.sampling.replay import ReplayReader

    nvtx = []
    cuda = types.SimpleNamespace(
        Event=_FakeEvent, synchronize=lambda *a: None, current_stream=lambda *a: None, is_available=lambda: True,
        nvtx=types.SimpleNamespace(range_push=lambda n: nvtx.append(("push", n)), range_pop=lambda: nvtx.append("pop")))
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    fields = {k: None for k in GPUFacts.__dataclass_fields__}
    fake_gpu = GPUFacts(**{**fields, "name": "synthetic", "uuid": "GPU-synthetic-0", "index": 0, "nvml_index": 0,
                           "driver_version": "0.0"})
    monkeypatch.setattr(devices, "discover_gpus", lambda: [fake_gpu])
    monkeypatch.setattr(devices, "require_gpu", lambda *a: None)
    now_us = time.time_ns() // 1000
    trace = synthetic_trace(lambda t: np.where(t < 0.6, 100.0, 400.0), start_t_us=now_us, duration_s=5.0)
    with Profiler(reader=ReplayReader(trace, start_at_us=now_us), sensor_profiles=[SensorProfile()]) as prof:
        with prof.phase("low"):
            time.sleep(0.5)
        with prof.phase("high"):
            with prof.phase("inner"):
                time.sleep(0.3)
            time.sleep(0.3)
    r = prof.result()
    assert [p.path for p in r.phases] == ["low", "high", "high/inner"]
    assert r.phase("high/inner").depth == 1
    assert r.phase("low").time_s == pytest.approx(0.5, abs=0.05)
    assert r.phase("low").mean_power_w == pytest.approx(100.0, abs=10)
    high = next(i for i in prof.timeline.intervals if i.path == "high")
    t0_s, t1_s = (high.t0_ns / 1e3 - now_us) / 1e6, (high.t1_ns / 1e3 - now_us) / 1e6
    true_mean = (100.0 * max(0.0, 0.6 - t0_s) + 400.0 * (t1_s - max(t0_s, 0.6))) / (t1_s - t0_s)
    assert r.phase("high").mean_power_w == pytest.approx(true_mean, abs=0.02 * 300 / (t1_s - t0_s))
    assert r.provenance == "replayed" and r.lost_samples == 0
    assert nvtx == [("push", "low"), "pop", ("push", "high"), ("push", "inner"), "pop", "pop"]
    monkeypatch.undo()  # the run file records the real environment
    back = load_profile(prof.save(tmp_path / "p.json"))
    assert back.phase("high").energy_j == pytest.approx(r.phase("high").energy_j, rel=1e-12)
