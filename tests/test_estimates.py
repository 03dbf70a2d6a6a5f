"""The estimates' arithmetic and the calibration fit (synthetic numbers test the math only)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernelprof.estimates.energy import (EnergyModel, Microbenchmark, achieved_fraction, estimate_all,
                                  fit_energy_model, per_unit_energy, roofline_time_s)
from kernelprof.estimates.datasheets import datasheet_for

H100 = datasheet_for("NVIDIA H100 80GB HBM3")


def test_paper_estimate_is_tdp_over_peak_times_flops():
    flops = 2 * 4096**3
    ests = {e.name: e for e in estimate_all(flops=flops, min_bytes=3 * 2 * 4096**2, dtype="bf16",
                                            time_s=0.19e-3, energy_j=0.13, sheet=H100)}
    assert ests["paper"].energy_j == pytest.approx(700 / 989.4e12 * flops)
    assert ests["paper"].ratio == pytest.approx(0.13 / ests["paper"].energy_j)
    # Compute-bound: roofline time is FLOPs / peak, so roofline == paper here.
    assert ests["roofline"].energy_j == pytest.approx(ests["paper"].energy_j)
    assert ests["calibrated"].energy_j is None and "calibrate" in ests["calibrated"].note


def test_memory_bound_roofline_uses_bandwidth():
    t = roofline_time_s(1e6, 1e9, 989.4e12, 3.35e12)
    assert t == pytest.approx(1e9 / 3.35e12)
    ests = {e.name: e for e in estimate_all(flops=0, min_bytes=1e9, dtype="bf16", time_s=0.4e-3,
                                            energy_j=0.2, sheet=H100)}
    assert ests["paper"].energy_j == 0 and ests["paper"].ratio is None  # the paper's formula sees no FLOPs
    assert ests["utilization"].energy_j == pytest.approx(700 * 0.4e-3 * (1e9 / 0.4e-3 / 3.35e12))


def test_unknown_gpu_gives_explicit_no_entry():
    ests = estimate_all(flops=1, min_bytes=1, dtype="bf16", time_s=1, energy_j=1, sheet=None)
    assert all(e.energy_j is None for e in ests)
    assert "no datasheet entry" in ests[0].note


def test_achieved_fraction_rejects_nonpositive_time():
    with pytest.raises(ValueError):
        achieved_fraction(flops=1, min_bytes=1, time_s=0, peak_flop_s=1, bandwidth_bytes_s=1)


@settings(max_examples=60, deadline=None)
@given(e_byte=st.floats(1e-12, 1e-10), e_bf16=st.floats(1e-13, 5e-12), e_fp32=st.floats(1e-12, 2e-11),
       static=st.floats(50, 150))
def test_fit_recovers_coefficients_of_a_model_that_generated_the_points(e_byte, e_bf16, e_fp32, static):
    truth = EnergyModel("g", None, {"bf16": e_bf16, "fp32": e_fp32}, e_byte, static)
    shapes = [("copy", None, 0.0, 8e9, 2.7e-3), ("gemm", "bf16", 1.1e12, 1e8, 1.6e-3),
              ("fma", "fp32", 5e11, 1e6, 9e-3)]
    points = [Microbenchmark(n, d, f, b, t, truth.predict_j(flops=f, min_bytes=b, time_s=t, dtype=d or "fp32"))
              for n, d, f, b, t in shapes]
    fit = fit_energy_model(points, static_power_w=static, gpu_name="g")
    assert fit.e_byte_j == pytest.approx(e_byte, rel=1e-9)
    assert fit.e_flop_j["bf16"] == pytest.approx(e_bf16, rel=1e-6)
    assert fit.e_flop_j["fp32"] == pytest.approx(e_fp32, rel=1e-6)
    assert all(abs(r) < 1e-6 for r in fit.residuals.values())
    assert EnergyModel.from_json(fit.to_json()).e_flop_j == fit.e_flop_j


def test_fit_needs_a_streaming_point():
    with pytest.raises(ValueError, match="streaming"):
        fit_energy_model([Microbenchmark("gemm", "bf16", 1e12, 1e8, 1e-3, 1.0)], static_power_w=100, gpu_name="g")


def test_per_unit_energy():
    u = per_unit_energy(1.0, flops=1e12, min_bytes=0)
    assert u["pj_per_flop"] == pytest.approx(1.0) and u["pj_per_byte"] is None
