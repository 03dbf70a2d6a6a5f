"""The estimates' arithmetic, the paper's peak conventions, and the energy fit.

Every fitted model here is fitted to SYNTHETIC points generated from a known power model: they
test the math (recovery, leave-one-out, distinctness of the estimates), never a measurement.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernelprof.estimates.energy_fit import (ActivityBasis, EnergyFit, FitPoint, achieved_activity, activity_from_counters,
                                   fit_energy, fit_linear, nnls)
from kernelprof.estimates.energy import (ESTIMATE_NAMES, achieved_fraction, estimate_all, paper_estimate_j,
                                  per_unit_energy, roofline_time_s)
from kernelprof.estimates.datasheets import datasheet_for

H100 = datasheet_for("NVIDIA H100 80GB HBM3")
H200 = datasheet_for("NVIDIA H200")
A6000 = datasheet_for("NVIDIA RTX A6000")
GEMM_8192_FLOPS = 2 * 8192**3
GEMM_8192_BYTES = 3 * 2 * 8192**2
DECODE_BYTES = 1.07e9  # B16 ctx 16384-ish decode: ~1 GB of KV per call
DECODE_FLOPS = 4 * 32 * 128 * 16 * 16384


# ---------------------------------------------------------------------------------------------
# The paper's conventions

def test_a6000_headline_is_the_papers_309_7_and_dense_is_154_8():
    assert A6000.peak_for("bf16", "headline") == pytest.approx(309.7e12)
    assert A6000.peak_for("bf16", "dense") == pytest.approx(154.8e12)
    flops = 1e15
    assert paper_estimate_j(flops, "bf16", A6000) == pytest.approx(300 / 309.7e12 * flops)  # default: headline
    assert paper_estimate_j(flops, "bf16", A6000, "dense") == pytest.approx(300 / 154.8e12 * flops)


def test_hopper_headline_is_the_sparse_figure():
    for sheet in (H100, H200):
        assert sheet.peak_for("bf16", "headline") == pytest.approx(1979e12)
        assert sheet.peak_for("fp16", "headline") == pytest.approx(1979e12)
        assert sheet.peak_for("fp8", "headline") == pytest.approx(3958e12)
        assert sheet.peak_for("bf16", "dense") == pytest.approx(989.4e12)
        assert sheet.peak_for("fp32", "headline") == sheet.peak_for("fp32", "dense")  # no sparsity on CUDA cores
    with pytest.raises(ValueError, match="convention"):
        H200.peak_for("bf16", "marketing")
    with pytest.raises(ValueError, match="convention"):
        paper_estimate_j(1.0, "bf16", H200, "sparse")
    assert paper_estimate_j(1.0, "bf16", None) is None


def test_paper_estimate_is_labelled_with_its_convention():
    for conv, peak in (("headline", 1979e12), ("dense", 989.4e12)):
        ests = {e.name: e for e in estimate_all(flops=GEMM_8192_FLOPS, min_bytes=GEMM_8192_BYTES, dtype="bf16",
                                                time_s=1.5e-3, energy_j=1.05, sheet=H200, paper_convention=conv)}
        assert ests["paper"].energy_j == pytest.approx(700 / peak * GEMM_8192_FLOPS)
        assert ests["paper"].convention == conv and conv in ests["paper"].formula
        assert ests["roofline"].convention == "dense"


def test_no_caller_computes_tdp_over_peak_itself():
    """The paper estimate has one implementation (issue 12: it was computed in four places)."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parent.parent / "kernelprof"
    offenders = [p.name for p in root.rglob("*.py") if "tdp_w / peak" in p.read_text() and p.relative_to(root).as_posix() != "estimates/energy.py"]
    assert offenders == []


# ---------------------------------------------------------------------------------------------
# The datasheet estimates

def test_memory_bound_roofline_uses_bandwidth():
    t = roofline_time_s(1e6, 1e9, 989.4e12, 3.35e12)
    assert t == pytest.approx(1e9 / 3.35e12)
    ests = {e.name: e for e in estimate_all(flops=0, min_bytes=1e9, dtype="bf16", time_s=0.4e-3,
                                            energy_j=0.2, sheet=H100)}
    assert ests["paper"].energy_j == 0 and ests["paper"].ratio is None  # the paper's formula sees no FLOPs
    assert ests["roofline"].energy_j == pytest.approx(700 * 1e9 / 3.35e12)


def test_utilization_is_tdp_time_and_nvml_utilization():
    ests = {e.name: e for e in estimate_all(flops=GEMM_8192_FLOPS, min_bytes=GEMM_8192_BYTES, dtype="bf16",
                                            time_s=1.5e-3, energy_j=1.0, sheet=H200, nvml_utilization_pct=80.0)}
    assert ests["utilization"].energy_j == pytest.approx(700 * 1.5e-3 * 0.8)
    missing = {e.name: e for e in estimate_all(flops=1, min_bytes=1, dtype="bf16", time_s=1, energy_j=1, sheet=H200)}
    assert missing["utilization"].energy_j is None and "not recorded" in missing["utilization"].note


def test_unknown_gpu_and_no_calibration_give_explicit_none():
    ests = estimate_all(flops=1, min_bytes=1, dtype="bf16", time_s=1, energy_j=1, sheet=None)
    assert [e.name for e in ests] == list(ESTIMATE_NAMES)
    assert all(e.energy_j is None for e in ests)
    assert "no datasheet entry" in ests[0].note and "kernelprof calibrate" in ests[-1].note


def test_achieved_fraction_rejects_nonpositive_time():
    with pytest.raises(ValueError):
        achieved_fraction(flops=1, min_bytes=1, time_s=0, peak_flop_s=1, bandwidth_bytes_s=1)


def test_per_unit_energy():
    u = per_unit_energy(1.0, flops=1e12, min_bytes=0)
    assert u["pj_per_flop"] == pytest.approx(1.0) and u["pj_per_byte"] is None


# ---------------------------------------------------------------------------------------------
# Synthetic calibration points (SYNTHETIC: a made-up linear power model, for the math only)

BASIS = ActivityBasis({k: H200.peak_flop_s(k) for k in ("bf16", "fp16", "fp8", "fp32")}, 4.3e12, "synthetic")
TRUTH = {"e_flop_j[bf16]": 0.55e-12, "e_flop_j[fp16]": 0.6e-12, "e_flop_j[fp8]": 0.3e-12,
         "e_flop_j[fp32]": 6e-12, "e_byte_j": 60e-12, "busy_power_w": 90.0}
# name, kind, dtype, FLOPs, bytes, time_s: shaped like the calibration suite on an H200
SHAPES = [
    ("gemm-bf16-8192", "compute", "bf16", 2 * 8192**3, 3 * 2 * 8192**2, 1.52e-3),
    ("gemm-fp16-8192", "compute", "fp16", 2 * 8192**3, 3 * 2 * 8192**2, 1.55e-3),
    ("gemm-fp8-8192", "compute", "fp8", 2 * 8192**3, 8192**2 * 4, 0.85e-3),
    ("gemm-fp8-4096", "compute", "fp8", 2 * 4096**3, 4096**2 * 4, 0.12e-3),
    ("gemm-fp32-4096", "compute", "fp32", 2 * 4096**3, 3 * 4 * 4096**2, 2.7e-3),
    ("gemm-fp32-2048", "compute", "fp32", 2 * 2048**3, 3 * 4 * 2048**2, 0.36e-3),
    ("copy-1gib", "memory", None, 0, 2 * 2**30, 0.5e-3),
    ("decode-b16-ctx8192", "memory", "bf16", 4 * 32 * 128 * 16 * 8192, 5.37e8, 0.13e-3),
    ("decode-b1-ctx32768", "memory", "bf16", 4 * 32 * 128 * 32768, 1.34e8, 0.1e-3),
    ("attention-s4096-causal", "mixed", "bf16", 2 * 4 * 32 * 128 * 4096 * 4097, 4 * 4 * 32 * 4096 * 128 * 2, 0.95e-3),
    ("gemm-bf16-2048", "mixed", "bf16", 2 * 2048**3, 3 * 2 * 2048**2, 0.034e-3),
    ("gemm-fp16-2048", "mixed", "fp16", 2 * 2048**3, 3 * 2 * 2048**2, 0.035e-3),
    ("gemm-bf16-256", "low_utilization", "bf16", 2 * 256**3, 3 * 2 * 256**2, 6e-6),
    ("decode-b1-ctx1024", "low_utilization", "bf16", 4 * 32 * 128 * 1024, 4.2e6, 9e-6),
]


def synthetic_points(truth=TRUTH, *, noise=0.0, seed=0, idle_w=122.0, shapes=SHAPES) -> list[FitPoint]:
    rng = np.random.default_rng(seed)
    pts = []
    for name, kind, dtype, f, b, t in shapes:
        flops = {dtype: float(f)} if dtype and f else {}
        dyn = sum(truth.get(f"e_flop_j[{d}]", 0.0) * v for d, v in flops.items()) + truth["e_byte_j"] * b \
            + truth["busy_power_w"] * t
        e = (idle_w * t + dyn) * (1 + noise * rng.standard_normal())
        pts.append(FitPoint(name, kind, flops, float(b), t, e, idle_w, achieved_activity(flops, b, t, BASIS),
                            source="synthetic (tests the math only)"))
    return pts


def synthetic_fit(**kw) -> EnergyFit:
    return fit_energy(synthetic_points(**kw), gpu_name="NVIDIA H200", basis=BASIS, source="synthetic")


@settings(max_examples=50, deadline=None)
@given(st.integers(3, 12), st.integers(1, 6), st.integers(0, 10_000))
def test_nnls_meets_its_optimality_conditions(m, n, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(m, n)), rng.normal(size=m)
    x, free = nnls(a, b)
    w = a.T @ (b - a @ x)  # gradient of -||ax - b||^2 / 2
    assert np.all(x >= 0)
    assert np.all(w[~free] <= 1e-8) and np.allclose(w[free], 0, atol=1e-8)


def test_fit_recovers_the_coefficients_that_generated_noisy_synthetic_points():
    fit = synthetic_fit(noise=0.01, seed=3)
    lf = fit.calibrated
    for k, true in TRUTH.items():
        se = lf.standard_errors[k]
        assert se is not None and se > 0
        assert abs(lf.coefficients[k] - true) < 4 * se + 0.05 * true, k
    exact = synthetic_fit(noise=0.0).calibrated
    for k, true in TRUTH.items():
        assert exact.coefficients[k] == pytest.approx(true, rel=1e-6)
    assert exact.rms_rel_residual < 1e-9


def test_a_negative_truth_is_held_at_zero_with_no_standard_error():
    truth = dict(TRUTH, busy_power_w=-40.0)  # below the idle: unphysical, so the fit clamps it
    fit = fit_energy(synthetic_points(truth), gpu_name="g", basis=BASIS)
    assert fit.calibrated.coefficients["busy_power_w"] == 0.0
    assert "busy_power_w" in fit.calibrated.at_bound and fit.calibrated.standard_errors["busy_power_w"] is None


def test_leave_one_out_predicts_every_point_of_an_exact_model():
    fit = synthetic_fit(noise=0.0)
    assert [h.name for h in fit.leave_one_out] == [s[0] for s in SHAPES]
    for h in fit.leave_one_out:
        assert h.how == "leave_one_out"
        assert h.calibrated_ratio == pytest.approx(1.0, rel=1e-6), h.name
    assert fit.worst_held_out_error_pct("calibrated") < 1e-4


def test_leave_one_out_says_when_a_point_is_the_only_one_of_its_dtype():
    shapes = [s for s in SHAPES if s[0] != "gemm-fp8-4096"]
    fit = fit_energy(synthetic_points(shapes=shapes), gpu_name="g", basis=BASIS)
    fp8 = next(h for h in fit.leave_one_out if h.name == "gemm-fp8-8192")
    assert fp8.calibrated_j is None and "only point" in fp8.note


def test_subjects_are_predicted_not_fitted():
    subj = synthetic_points(shapes=[("gemm-triton-4096", "subject", "bf16", 2 * 4096**3, 3 * 2 * 4096**2, 0.19e-3)])
    fit = fit_energy(synthetic_points(), gpu_name="g", basis=BASIS, subjects=subj)
    assert "gemm-triton-4096" not in fit.calibrated.points
    (h,) = fit.not_fitted
    assert h.how == "not_fitted" and h.calibrated_ratio == pytest.approx(1.0, rel=1e-6)


def test_predictions_are_capped_at_the_power_limit_and_old_fits_are_not():
    """A linear sum above the board's limit x time is impossible: the limiter holds the average."""
    import json

    pts = synthetic_points()
    tiny = next(p for p in pts if p.name == "gemm-bf16-2048")
    sum_w = tiny.energy_j / tiny.time_s  # the exact synthetic model's power for this point
    limit_w = 0.9 * sum_w
    fit = fit_energy(pts, gpu_name="g", basis=BASIS, power_limit_w=limit_w)
    h = next(h for h in fit.leave_one_out if h.name == "gemm-bf16-2048")
    assert h.calibrated_j == pytest.approx(limit_w * tiny.time_s) and "power limit" in h.note
    assert h.activity_j == pytest.approx(limit_w * tiny.time_s)
    pred = fit.predict_calibrated_j(flops_by_dtype=tiny.flops_by_dtype, bytes=tiny.bytes, time_s=tiny.time_s,
                                    idle_power_w=tiny.idle_power_w)
    assert pred == pytest.approx(limit_w * tiny.time_s)
    low = next(h for h in fit.leave_one_out if h.name == "decode-b1-ctx1024")  # far under the limit
    assert low.calibrated_ratio == pytest.approx(1.0, rel=1e-6) and low.note == ""
    doc = fit.to_json()
    assert EnergyFit.from_json(json.loads(json.dumps(doc))).power_limit_w == limit_w
    del doc["power_limit_w"]  # a fit cached before the cap existed: loads, predicts uncapped
    old = EnergyFit.from_json(doc)
    assert old.power_limit_w is None
    assert old.predict_calibrated_j(flops_by_dtype=tiny.flops_by_dtype, bytes=tiny.bytes, time_s=tiny.time_s,
                                    idle_power_w=tiny.idle_power_w) == pytest.approx(tiny.energy_j, rel=1e-6)


def test_fit_needs_more_points_than_coefficients():
    with pytest.raises(ValueError, match="cannot fit"):
        fit_linear(["a", "b"], [{"x": 1.0, "y": 2.0}, {"x": 2.0, "y": 1.0}], [1.0, 1.0], [1.0, 1.0])


def test_energy_fit_round_trips_through_json():
    import json

    fit = synthetic_fit(noise=0.01)
    back = EnergyFit.from_json(json.loads(json.dumps(fit.to_json())))
    assert back.calibrated == fit.calibrated and back.activity == fit.activity
    assert back.points == fit.points and back.leave_one_out == fit.leave_one_out


def test_activity_from_ncu_counters():
    from kernelprof.estimates.counters.totals import CounterTotals

    totals = CounterTotals(kernel_count=1, duration_s=1e-3, tensor_flops=494.7e9,
                           tensor_flops_by_dtype={"bf16": 494.7e9}, tensor_flops_by_path={}, fma_flops=6.7e9,
                           fma_flops_by_precision={"fp32": 6.7e9}, dram_read_bytes=2.15e9, dram_write_bytes=0.0,
                           l2_bytes=None, achieved_occupancy_pct=None, sm_throughput_pct=None,
                           memory_throughput_pct=None, dram_throughput_pct=None, sm_clock_hz=None)
    frac = activity_from_counters(totals, BASIS)
    assert frac["tensor"] == pytest.approx(0.5) and frac["fma"] == pytest.approx(0.1)
    assert frac["dram"] == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------------
# No two estimates are the same quantity

def _estimates(flops, min_bytes, time_s, energy_j, fit, util=100.0, dtype="bf16", activity=None):
    return {e.name: e for e in estimate_all(flops=flops, min_bytes=min_bytes, dtype=dtype, time_s=time_s,
                                            energy_j=energy_j, sheet=H200, model=fit, idle_power_w=122.0,
                                            nvml_utilization_pct=util, activity=activity)}


def test_no_two_estimates_are_the_same_quantity():
    """On a GEMM 8192^3 bf16 at 1.5 ms and a ~1 GB decode at 0.25 ms on an H200 datasheet, with NVML
    at 100% and models fitted on synthetic points, every pair of estimates differs by more than 1%.
    The old utilization estimate equalled the roofline one exactly (0% apart: the same quantity).
    Estimates that track the measurement (utilization, activity, calibrated) can land close on a
    power-capped GEMM, where all of them read ~TDP x time; what sets them apart is what each
    responds to (test_estimates_depend_on_different_inputs). The decode's activity is ncu-shaped
    (softmax on the FMA pipes, split-K partials on DRAM): from achieved rates alone the activity
    fractions are counts / time, and on a single-dtype decode the activity and calibrated fits
    then agree to within 0.1% (see test_activity_from_achieved_rates_is_counts_over_time)."""
    # SYNTHETIC energies from mean powers shaped like the H200 readings in SENSOR_FACTS.md (GEMMs at
    # the 700 W cap, a copy at ~480 W but a decode at ~670 W for the same bandwidth, small kernels
    # near 230 W): no linear model fits them exactly, so the two fitted models compromise differently.
    power_w = {"compute": 690.0, "memory": 560.0, "mixed": 600.0, "low_utilization": 230.0}
    power_w_by_name = {"copy-1gib": 482.0, "decode-b16-ctx8192": 670.0, "gemm-fp32-2048": 640.0}
    pts = [FitPoint(p.name, p.kind, p.flops_by_dtype, p.bytes, p.time_s,
                    power_w_by_name.get(p.name, power_w[p.kind]) * p.time_s, p.idle_power_w, p.activity,
                    source="synthetic (tests the math only)") for p in synthetic_points()]
    fit = fit_energy(pts, gpu_name="NVIDIA H200", basis=BASIS, source="synthetic")
    for case in (_estimates(GEMM_8192_FLOPS, GEMM_8192_BYTES, 1.5e-3, 1.04, fit),
                 _estimates(DECODE_FLOPS, DECODE_BYTES, 0.25e-3, 0.16, fit,
                            activity={"tensor": 0.02, "fma": 0.06, "dram": 1.07e9 * 1.04 / 0.25e-3 / BASIS.copy_bytes_s})):
        assert set(case) == set(ESTIMATE_NAMES)
        for a, b in itertools.combinations(ESTIMATE_NAMES, 2):
            ea, eb = case[a].energy_j, case[b].energy_j
            assert ea and eb, (a, b)
            assert abs(ea - eb) / max(ea, eb) > 0.01, (a, b, ea, eb)


def test_estimates_depend_on_different_inputs():
    """What each estimate responds to: measured time, NVML utilization, or neither."""
    fit = synthetic_fit(noise=0.0)
    base = _estimates(GEMM_8192_FLOPS, GEMM_8192_BYTES, 1.5e-3, 1.0, fit)
    slower = _estimates(GEMM_8192_FLOPS, GEMM_8192_BYTES, 3.0e-3, 1.0, fit)
    half = _estimates(GEMM_8192_FLOPS, GEMM_8192_BYTES, 1.5e-3, 1.0, fit, util=50.0)
    for name in ("paper", "roofline"):  # datasheet only: blind to the measurement
        assert slower[name].energy_j == base[name].energy_j == half[name].energy_j
    assert half["utilization"].energy_j == pytest.approx(base["utilization"].energy_j / 2)
    for name in ("utilization", "activity", "calibrated"):
        assert slower[name].energy_j > base[name].energy_j
    assert half["calibrated"].energy_j == base["calibrated"].energy_j  # counts and time, not NVML


def test_activity_from_achieved_rates_is_counts_over_time():
    """Stated in energy_fit's docstring: achieved-rate fractions x time are FLOPs / peak and bytes /
    copy bandwidth, so the activity model is the calibrated one with e_flop tied to 1/peak."""
    frac = achieved_activity({"bf16": 1e12}, 2e9, 1e-3, BASIS)
    assert frac["tensor"] * 1e-3 == pytest.approx(1e12 / BASIS.peak_flop_s["bf16"])
    assert frac["dram"] * 1e-3 == pytest.approx(2e9 / BASIS.copy_bytes_s)


def test_a_capped_calibrated_estimate_says_so():
    from dataclasses import replace

    from kernelprof.estimates.energy import fitted_estimates

    fit = replace(synthetic_fit(), power_limit_w=300.0)  # SYNTHETIC limit, below this point's sum
    t = 0.034e-3
    ests = {e.name: e for e in fitted_estimates(flops=2 * 2048**3, min_bytes=3 * 2 * 2048**2, dtype="bf16",
                                                   time_s=t, energy_j=None, model=fit, idle_power_w=122.0)}
    assert ests["calibrated"].energy_j == pytest.approx(300.0 * t)
    assert "capped at the 300 W power limit" in ests["calibrated"].note
    assert "capped" in ests["activity"].note
