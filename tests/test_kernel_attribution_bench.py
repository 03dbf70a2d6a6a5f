"""benchmarks/kernel_attribution.py's helpers on a real recording (8B batch-8 profile, CPU only)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import kernel_attribution as ka  # noqa: E402
from kernelprof.profiler import load_profile_run  # noqa: E402


def test_case_clocks_average_the_readings_inside_each_cases_intervals():
    run = load_profile_run(ROOT / "traces/llm-llama-3.1-8b-b8-optimized.profile.json")
    clocks = ka.case_clocks(run, ["prefill", "decode", "no-such-phase"])
    g = run.trace.gpus[0]
    t_ns = g.state_t_us.astype(np.int64) * 1000
    dec = [iv for iv in run.timeline.intervals if iv.name == "decode"]
    inside = np.zeros(len(t_ns), bool)
    for iv in dec:
        inside |= (t_ns >= iv.t0_ns) & (t_ns < iv.t1_ns)
    inside &= np.isfinite(g.sm_clock_mhz)
    assert clocks["decode"][1] == int(inside.sum()) > clocks["prefill"][1] > 0
    assert clocks["decode"][0] == float(np.mean(g.sm_clock_mhz[inside]))
    assert 300 < clocks["prefill"][0] <= 2100
    assert clocks["no-such-phase"] == (None, 0)
