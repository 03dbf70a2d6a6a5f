"""Joules per kernel class in each phase, on the real H100 8B recording with kernels (0.97 s, batch 8)."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from kernelprof.methods.phase_classes import classes_per_phase, split_phases

ROOT = Path(__file__).resolve().parents[1]
REC = ROOT / "traces" / "llm-llama-3.1-8b-b8-kernels-optimized.profile.json"


def test_each_phase_sums_to_its_energy_and_busy_time_covers_the_phase():
    (fit, phases), = classes_per_phase(REC)
    assert [p.path for p in phases] == ["prefill", "decode"]
    for p in phases:
        assert p.balance_j() == pytest.approx(p.energy_j, rel=1e-12)
        # share-weighted busy time of the classes plus idle time is the phase's time, exactly
        assert sum(c.busy_s for c in p.classes) + p.idle_s == pytest.approx(p.time_s, rel=1e-9)
    assert phases[0].classes[0].name == "gemm" and phases[1].classes[0].name == "gemm"
    # 0.97 s is too short for the regression: nothing is identifiable, nothing is printed as measured
    assert not any(c.identifiable for c in fit.classes)
    assert all(c.energy_j is None for p in phases for c in p.classes) and all(p.idle_energy_j is None for p in phases)
    assert all(p.residual_j == pytest.approx(p.energy_j) for p in phases)


def test_identified_classes_get_power_times_busy_and_the_rest_is_residual():
    """The same fit with gemm marked identifiable and an idle standard error: the arithmetic of the split
    (a check of the composition, not a measurement)."""
    from kernelprof.profiler import load_profile_run

    (fit, phases), = classes_per_phase(REC)
    gemm = next(c for c in fit.classes if c.name == "gemm")
    marked = replace(fit, classes=tuple(replace(c, identifiable=c.name == "gemm") for c in fit.classes),
                     idle_power_w=100.0, idle_power_se_w=5.0)
    r = load_profile_run(REC)
    windows = [(p.path, [(iv.t0_ns, iv.t1_ns) for iv in r.timeline.intervals if iv.path == p.path and iv.depth == 0],
                p.energy_j) for p in phases]
    again = split_phases(marked, r.kernels, 0, windows)
    for p in again:
        g = next(c for c in p.classes if c.name == "gemm")
        assert g.energy_j == pytest.approx(gemm.power_w * g.busy_s) and p.idle_energy_j == pytest.approx(100.0 * p.idle_s)
        assert p.residual_j == pytest.approx(p.energy_j - g.energy_j - p.idle_energy_j)
        assert all(c.energy_j is None for c in p.classes if c.name != "gemm")


def test_report_by_class_on_a_profile():
    r = subprocess.run([sys.executable, "-m", "kernelprof", "report", str(REC), "--by", "class"], capture_output=True,
                       text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "80"})
    assert r.returncode == 0, r.stderr
    assert "prefill (1x" in r.stdout and "not identifiable" in r.stdout and "residual" in r.stdout
    assert max(len(line) for line in r.stdout.splitlines()) <= 80
