"""Verdicts of `compare` (synthetic numbers: this tests the decision rule, not a measurement)."""
from __future__ import annotations

import numpy as np
import pytest

from kernelprof.methods.compare import VariantPoint, compare_all, compare_pair
from kernelprof.outputs.plots import energy_vs_time_png

BASE = VariantPoint("sdpa-flash", energy_j=1.00, energy_ci_j=0.01, time_s=1.0e-3, time_ci_s=0.005e-3)


def test_faster_and_less_energy_saves_energy():
    c = compare_pair(BASE, VariantPoint("triton", 0.80, 0.01, 0.85e-3, 0.005e-3))
    assert c.verdict == "saves energy" and c.energy_ratio == pytest.approx(0.8)


def test_faster_but_hotter_saves_only_time():
    # 20% faster, drawing 25% more power: energy per call unchanged.
    c = compare_pair(BASE, VariantPoint("hot", 1.00, 0.01, 0.80e-3, 0.005e-3))
    assert c.verdict == "saves only time"
    assert c.power_ratio == pytest.approx(1.25)


def test_slower_and_more_energy_wastes_energy():
    c = compare_pair(BASE, VariantPoint("eager", 3.0, 0.05, 4e-3, 0.01e-3))
    assert c.verdict == "wastes energy"


def test_within_uncertainty_is_no_difference():
    c = compare_pair(BASE, VariantPoint("same", 1.005, 0.02, 1.001e-3, 0.01e-3))
    assert c.verdict == "no significant difference"


def test_compare_all_needs_known_baseline():
    with pytest.raises(ValueError, match="baseline"):
        compare_all([BASE, BASE], baseline="nope")


def test_plot_writes_png(tmp_path):
    path = energy_vs_time_png([BASE, VariantPoint("triton", 0.8, 0.01, 0.85e-3, 0.005e-3)],
                              tmp_path / "e.png", title="attention")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_measured_over_estimates_ratios_and_plot(tmp_path):
    from kernelprof.outputs.plots import EstimateRow, estimate_ratios, measured_over_estimates_png

    rows = [EstimateRow("gemm", 0.15, 0.003, {"paper": 0.1, "roofline": 0.1, "calibrated": None}),
            EstimateRow("decode", 0.11, None, {"paper": 0.0011, "roofline": 0.13})]
    r = estimate_ratios(rows)
    assert sorted(r) == ["paper", "roofline"]  # an estimate missing everywhere is not drawn
    ratio, ci = r["paper"]
    assert ratio == pytest.approx([1.5, 100.0]) and ci[0] == pytest.approx(0.03) and np.isnan(ci[1])
    path = measured_over_estimates_png(rows, tmp_path / "m.png", title="measured / estimates")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no estimates"):
        measured_over_estimates_png([EstimateRow("x", 1.0, None, {})], tmp_path / "n.png", title="t")


def test_energy_verdicts_cases_carry_both_sides_and_the_split():
    from benchmarks.energy_verdicts import CASES, cases_of
    from kernelprof.methods.compare import compare_all
    from kernelprof.methods.compare_variants import VariantComparison

    assert len({c[0] for c in CASES}) == len(CASES)
    pts = [BASE, VariantPoint("triton", 0.8, 0.01, 0.85e-3, 0.005e-3)]
    variants = {p.name: {"measurement": {"energy_per_call_j": p.energy_j}} for p in pts}
    res = VariantComparison("gemm", "4096x4096x4096", "bf16", BASE.name, "NVIDIA H200", variants, {},
                            tuple(compare_all(pts, baseline=BASE.name)))
    (case,) = cases_of("gemm-bf16-4096", res)
    assert case.name == "gemm-bf16-4096/triton/energy_ratio" and case.value == pytest.approx(0.8 / BASE.energy_j)
    e = case.extra
    assert e["candidate_j_per_call"] == 0.8 and e["baseline_j_per_call"] == BASE.energy_j
    assert case.value == pytest.approx(e["time_ratio"] * e["power_ratio"])  # energy = time x power, exactly
