"""The counters energy model (kernelprof.estimates.energy_fit) and how the calibration collects its counts
(kernelprof.methods.calibration_counters), without a GPU.

The fitted points are SYNTHETIC, generated from a known linear model: they test the math (recovery,
leave-one-out, what the model separates that the calibrated one cannot), never a measurement. The
ncu rows are built by hand in ncu's units, to test the bookkeeping.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from kernelprof.estimates.counters.ncu import NcuKernel
from kernelprof.estimates.energy_fit import EnergyFit, FitPoint, fit_energy
from kernelprof.methods.calibration_counters import (MARKER_KERNEL, SMEM_OP_METRICS, SMEM_TOTAL, WARP_INSTRUCTIONS,
                                                     counts_from_kernels, split_at_markers)

IDLE_W = 120.0
TRUTH = {"e_tensor_flop_j[bf16]": 0.5e-12, "e_tensor_flop_j[fp8]": 0.28e-12, "e_fma_flop_j": 3.5e-12,
         "e_dram_byte_j": 60e-12, "e_l2_byte_j": 15e-12, "e_smem_wavefront_j": 1.2e-9, "busy_power_w": 90.0}
# name, time_s, counts per call: shaped like the H200 suite (the fp32 pair: equal FLOPs, the SGEMM
# staging its operands through shared memory, the FMA loop touching none).
POINTS = [
    ("gemm-bf16-8192", 1.52e-3, {"tensor_flops[bf16]": 1.1e12, "dram_bytes": 6e8, "l2_bytes": 3e10,
                                 "smem_wavefronts": 1.1e8}),
    ("gemm-bf16-2048", 34e-6, {"tensor_flops[bf16]": 1.72e10, "dram_bytes": 2.6e7, "l2_bytes": 8e8,
                               "smem_wavefronts": 1.8e6}),
    ("gemm-fp8-8192", 0.85e-3, {"tensor_flops[fp8]": 1.1e12, "dram_bytes": 3e8, "l2_bytes": 1.6e10,
                                "smem_wavefronts": 6e7}),
    ("gemm-fp8-4096", 0.12e-3, {"tensor_flops[fp8]": 1.37e11, "dram_bytes": 8e7, "l2_bytes": 4e9,
                                "smem_wavefronts": 9e6}),
    ("gemm-fp32-4096", 2.68e-3, {"fma_flops": 1.37e11, "dram_bytes": 2.2e8, "l2_bytes": 4.4e9,
                                 "smem_wavefronts": 5.4e8}),
    ("gemm-fp32-2048", 0.34e-3, {"fma_flops": 1.72e10, "dram_bytes": 5.5e7, "l2_bytes": 6e8,
                                 "smem_wavefronts": 6.9e7}),
    ("fma-fp32", 0.316e-3, {"fma_flops": 1.77e10, "dram_bytes": 1.1e6, "l2_bytes": 1.1e6}),
    ("copy-1gib", 0.5e-3, {"dram_bytes": 2.15e9, "l2_bytes": 2.2e9}),
    ("decode-b16-ctx8192", 0.13e-3, {"tensor_flops[bf16]": 2.7e9, "fma_flops": 4e8, "dram_bytes": 5.4e8,
                                     "l2_bytes": 5.6e8, "smem_wavefronts": 8e6}),
    ("decode-b1-ctx1024", 9e-6, {"tensor_flops[bf16]": 2e7, "fma_flops": 3e6, "dram_bytes": 4.2e6,
                                 "l2_bytes": 4.6e6, "smem_wavefronts": 6e4}),
]


PRICE = {"fma_flops": "e_fma_flop_j", "dram_bytes": "e_dram_byte_j", "l2_bytes": "e_l2_byte_j",
         "smem_wavefronts": "e_smem_wavefront_j"}


def _energy(counts: dict[str, float], time_s: float, truth: dict[str, float]) -> float:
    dyn = truth["busy_power_w"] * time_s
    for k, v in counts.items():
        dyn += truth[PRICE.get(k, f"e_tensor_flop_j[{k[13:-1]}]")] * v
    return IDLE_W * time_s + dyn


def _points(truth=TRUTH, with_counts=True) -> list[FitPoint]:
    out = []
    for name, t, counts in POINTS:
        flops = {k[13:-1]: v for k, v in counts.items() if k.startswith("tensor_flops[")}
        if "fma_flops" in counts and not flops:
            flops = {"fp32": counts["fma_flops"]}
        out.append(FitPoint(name, "compute", flops, counts.get("dram_bytes", 0.0), t, _energy(counts, t, truth),
                            IDLE_W, source="synthetic (tests the math only)",
                            counters=dict(counts) if with_counts else {}))
    return out


def test_counters_model_recovers_its_coefficients_and_predicts_every_point_left_out():
    fit = fit_energy(_points(), gpu_name="g")
    assert fit.counters is not None
    for k, true in TRUTH.items():
        assert fit.counters.coefficients[k] == pytest.approx(true, rel=1e-6), k
    for h in fit.leave_one_out:
        assert h.counters_ratio == pytest.approx(1.0, rel=1e-6), h.name
    assert fit.worst_held_out_error_pct("counters") < 1e-4


def test_the_fp32_pair_the_calibrated_model_cannot_separate_the_counters_model_can():
    """Equal FLOPs, time and clock, 2x the energy: only the SGEMM's shared-memory traffic explains it."""
    fit = fit_energy(_points(), gpu_name="g")
    by = {h.name: h for h in fit.leave_one_out}
    assert abs(by["fma-fp32"].calibrated_ratio - 1) > 0.10  # FLOPs, bytes and time alone miss it
    assert by["fma-fp32"].counters_ratio == pytest.approx(1.0, rel=1e-6)


def test_no_counters_model_unless_every_point_has_counts():
    pts = _points()
    pts[3] = _points(with_counts=False)[3]
    fit = fit_energy(pts, gpu_name="g")
    assert fit.counters is None and all(h.counters_j is None for h in fit.held_out())
    assert fit.worst_held_out_error_pct("counters") is None
    assert fit.calibrated is not None


def test_counters_fit_round_trips_and_old_fits_load_without_it():
    fit = fit_energy(_points(), gpu_name="g")
    doc = json.loads(json.dumps(fit.to_json()))
    back = EnergyFit.from_json(doc)
    assert back.counters == fit.counters and back.leave_one_out == fit.leave_one_out
    assert doc["leave_one_out"][0]["counters_ratio"] == pytest.approx(1.0, rel=1e-6)
    pred = back.predict_counters_j(counters=POINTS[0][2], time_s=POINTS[0][1], idle_power_w=IDLE_W)
    assert pred == pytest.approx(back.points[0].energy_j, rel=1e-6)
    for key in ("counters",):
        del doc[key]
    for row in doc["leave_one_out"]:
        del row["counters_j"], row["counters_ratio"]
    old = EnergyFit.from_json(doc)  # a fit cached before the counters model
    assert old.counters is None and old.leave_one_out[0].counters_j is None


def _k(i: int, name: str, **values) -> NcuKernel:
    return NcuKernel(i, name, "(1,1,1)", "(128,1,1)", values, {})


def test_counts_sum_a_calls_kernels_and_shared_memory_over_its_operations():
    ld, st, gmma, atom = SMEM_OP_METRICS
    kernels = [_k(1, "gemm_main", **{"sm__ops_path_tensor_src_bf16_dst_fp32.sum": 2e9, "dram__bytes_read.sum": 3e6,
                                     "dram__bytes_write.sum": 1e6, "lts__t_bytes.sum": 9e6, gmma: 4e5, ld: 1e3,
                                     SMEM_TOTAL: 1e3, WARP_INSTRUCTIONS: 5e5, "gpu__time_duration.sum": 2e-5}),
               _k(2, "reduce", **{"smsp__sass_thread_inst_executed_op_ffma_pred_on.sum": 1e6,
                                  "smsp__sass_thread_inst_executed_op_fadd_pred_on.sum": 2e5,
                                  "dram__bytes_write.sum": 1e6, st: 2e3, atom: None, WARP_INSTRUCTIONS: 1e4,
                                  "gpu__time_duration.sum": 3e-6})]
    c = counts_from_kernels(kernels)
    assert c["tensor_flops[bf16]"] == 2e9 and "tensor_flops[fp8]" not in c
    assert c["fma_flops"] == pytest.approx(2 * 1e6 + 2e5)
    assert c["dram_bytes"] == pytest.approx(5e6) and c["l2_bytes"] == 9e6
    assert c["smem_wavefronts"] == pytest.approx(4e5 + 1e3 + 2e3)
    assert c["smem_wavefronts_ncu_total"] == 1e3  # kept beside: here it leaves out the wgmma reads
    assert c["warp_instructions"] == pytest.approx(5.1e5) and c["kernel_count"] == 2
    assert c["duration_s"] == pytest.approx(2.3e-5)


def test_markers_split_the_launch_order_into_points():
    rows = [_k(5, "gemm_b"), _k(1, MARKER_KERNEL), _k(2, "copy"), _k(3, MARKER_KERNEL), _k(4, "gemm_a"),
            _k(6, MARKER_KERNEL)]
    groups = split_at_markers(rows)
    assert [[k.name for k in g] for g in groups] == [["copy"], ["gemm_a", "gemm_b"], []]
    assert split_at_markers([_k(1, "copy"), _k(2, MARKER_KERNEL)]) is None  # a kernel with no marker before it
    assert split_at_markers([]) is None


def test_fma_microbenchmark_rejects_bad_arguments_before_needing_a_gpu():
    from kernelprof.methods.calibrate import fma_microbenchmark

    with pytest.raises(ValueError, match="data"):
        fma_microbenchmark(0, data="random")
    with pytest.raises(ValueError, match="even"):
        fma_microbenchmark(0, iters=4095)


def test_calibrate_without_ncu_keeps_the_measured_fit_and_says_why(tmp_path, monkeypatch):
    """`calibrate --counters` on a machine without ncu: the energies measured (here: the 15 real H200
    summaries of 2026-12-02 stand in for measure_suite) still give the fit, and the note says why
    there is no counters model."""
    from types import SimpleNamespace

    import kernelprof.methods.calibration_counters as cc
    import kernelprof.methods.calibration_suite as suite
    from kernelprof.estimates.counters.ncu import NcuNotFoundError

    doc = json.loads((Path(__file__).resolve().parents[1] / "benchmarks/results/calibration-h200.json").read_text())
    summaries = doc["notes"]["measurements"]
    monkeypatch.setenv("KERNELPROF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(suite, "require_gpu", lambda *a: None)
    monkeypatch.setattr(suite, "gpu_facts", lambda d: SimpleNamespace(name="NVIDIA H200", uuid="GPU-test",
                                                                      driver_version="580.159.04", power_limit_w=700.0))
    monkeypatch.setattr(suite, "measure_suite", lambda *a, **k: ([dict(s) for s in summaries], []))

    def no_ncu(*a, **k):
        raise NcuNotFoundError("ncu is not on the PATH")

    monkeypatch.setattr(cc, "suite_counters", no_ncu)
    run = suite.calibrate(counters=True)
    assert run.fit.counters is None and len(run.fit.leave_one_out) == len(summaries)
    assert run.counter_notes and "ncu is not on the PATH" in run.counter_notes[0]
    assert run.fit.worst_held_out_error_pct("calibrated") == pytest.approx(67.0, abs=0.1)  # as the saved refit


def test_a_call_ncu_profiled_no_kernel_of_is_left_out_of_the_counters_fit_not_priced_at_zero():
    """A driver memcpy (torch's D2D copy_) is invisible to ncu: kernel_count 0 and no counts. Priced as
    zero traffic it wrecked the H100 fit of 2026-12-07 (copy predicted 98 mJ for 376 measured)."""
    pts = _points()
    i = next(j for j, p in enumerate(pts) if p.name == "copy-1gib")
    p = pts[i]
    pts[i] = FitPoint(p.name, p.kind, p.flops_by_dtype, p.bytes, p.time_s, p.energy_j, p.idle_power_w,
                      source=p.source, counters={"kernel_count": 0.0})
    fit = fit_energy(pts, gpu_name="g")
    assert fit.counters is not None and "copy-1gib" not in fit.counters.points
    copy = next(h for h in fit.leave_one_out if h.name == "copy-1gib")
    assert copy.counters_j is None and "no kernel" in copy.note
    # the other points are still recovered exactly (the copy's traffic is not smeared over them)
    for h in fit.leave_one_out:
        if h.name != "copy-1gib":
            assert h.counters_ratio == pytest.approx(1.0, rel=1e-6), h.name
    assert fit.calibrated is not None and "copy-1gib" in fit.calibrated.points
