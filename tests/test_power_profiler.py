"""The Profiler API's GPU-less parts: saving and reloading a run, errors, the lazy export."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kernelprof.attribution import SensorProfile, attribute
from kernelprof.clock import ClockAnchor, Interval, Timeline, fit_clock
from kernelprof.errors import NoGPUError, RunFileError
from kernelprof.profiler import Profiler, build_result, load_profile, save_profile
from kernelprof.replay import synthetic_trace

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
    from kernelprof.runfile import save_run

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
    code = ("import sys, kernelprof; heavy = [m for m in ('torch', 'numpy', 'kernelprof.sampler') if m in sys.modules];"
            "print(heavy); kernelprof.Profiler; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "[]"
